"""Device slots: each evaluation holds one GPU (or the one CPU slot), so two evaluations never share a device."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import Loop
from .sandbox import Sandbox
from .sandbox.base import Policy, WrappedSandbox

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the driver sees (no process to start)
WAIT_S = 0.5  # how often a worker waiting for a slot looks whether the run was stopped


@dataclass(frozen=True)
class Slot:
    """One place an evaluation runs: a device id, or None for the CPU slot (no variable set)."""

    index: int
    device: str | None

    @property
    def env(self) -> dict[str, str]:
        """What an evaluation in this slot sees: CUDA_VISIBLE_DEVICES and AUTORESEARCH_DEVICE."""
        if self.device is None:
            return {}
        return {"CUDA_VISIBLE_DEVICES": self.device, "AUTORESEARCH_DEVICE": self.device}

    @property
    def label(self) -> str:
        """How the record and the progress name it: `gpu 1`, or `cpu` for the slot without a device."""
        return "cpu" if self.device is None else f"gpu {self.device}"


def visible_devices(env: Mapping[str, str] | None = None, gpus: Path = NVIDIA_GPUS) -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else every GPU the driver lists."""
    env = os.environ if env is None else env
    given = env.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        # Set (even empty: "no GPU") by the runner or a parent; a slot may only ever narrow it.
        return [d.strip() for d in given.split(",") if d.strip() and d.strip() != "-1"]
    try:
        return [str(i) for i in range(len(list(gpus.iterdir())))]
    except OSError:
        return []


def slots_for(loop: Loop, env: Mapping[str, str] | None = None, gpus: Path = NVIDIA_GPUS) -> list[Slot]:
    """The loop's device slots: `devices:`, else the visible GPUs, else one slot with no device."""
    devices: list[str | None] = list(loop.devices) if loop.devices else list(visible_devices(env, gpus))
    return [Slot(i, d) for i, d in enumerate(devices or [None])]


class SlotPool:
    """Hands out free slots, one evaluation each; a holder waits until one is free."""

    def __init__(self, slots: list[Slot]) -> None:
        self.slots = list(slots)
        self._free = list(slots)
        self._ready = threading.Condition()
        self.busy_s = [0.0] * len(slots)  # seconds each slot was held: the device-busy figure

    @contextmanager
    def hold(self, check: Callable[[], None] | None = None) -> Iterator[Slot]:
        """A free slot for the duration of the block (the lowest free index first).

        check is called while waiting (it raises to give up: a signal stopped the run).
        """
        with self._ready:
            while not self._free:
                if check is not None:
                    check()
                self._ready.wait(timeout=WAIT_S)  # bounded: a stopped run must not wait for a slot
            slot = min(self._free, key=lambda s: s.index)
            self._free.remove(slot)
        started = time.monotonic()
        try:
            yield slot
        finally:
            with self._ready:
                self.busy_s[slot.index] += time.monotonic() - started
                self._free.append(slot)
                self._ready.notify()


class DeviceSandbox(WrappedSandbox):
    """The evaluation's sandbox with the slot's device variables set in its evaluation and score phases."""

    def __init__(self, inner: Sandbox, slot: Slot) -> None:
        super().__init__(inner)
        self.slot = slot

    def adjust(self, policy: Policy) -> Policy:
        """An evaluation (and its scorer) sees only its slot's device."""
        if policy.phase != "agent" and self.slot.env:
            policy = dataclasses.replace(policy, env={**policy.env, **self.slot.env})
        return policy
