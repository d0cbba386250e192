"""What listeners are told: a read-only view of a run, and the Listener protocol every listener implements.

Listeners (the terminal's progress, the pull request, a job summary) get this view, never the session
that calls them: they can read where the run is and say something (`warn`), but cannot reach its branch,
its record store or its remote.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import Loop
from .record import Attempt, Record

if TYPE_CHECKING:
    from .journal import InFlight
    from .slots import SlotPool


@dataclass(frozen=True)
class Flight:
    """One experiment in flight, as a listener sees it."""

    worker: int
    experiment: int  # provisional: the number it gets if nothing else is recorded first
    device: str  # '' until it holds a device slot
    phase: str


@dataclass(frozen=True)
class Throughput:
    """How much the run got through: experiments an hour and how busy the device slots were."""

    experiments: int
    per_hour: float
    busy: float  # the time the slots were held over (slots times elapsed), 0..1


class RunView:
    """A read-only window on one run; the session builds it once and hands it to every listener."""

    def __init__(self, *, loop: Loop, record: Callable[[], Record | None], dry_run: bool, remote: str,
                 sandbox: str, isolated: bool, workers: int, slots: SlotPool | None,
                 in_flight: Callable[[], dict[int, InFlight]], pushed: Callable[[], bool],
                 warn: Callable[[str], None]) -> None:
        self.loop = loop
        self.dry_run = dry_run
        self.remote = remote  # the remote's name ('origin')
        self.sandbox = sandbox  # the sandbox's name
        self.isolated = isolated
        self.workers = workers
        self._record = record
        self._slots = slots
        self._in_flight = in_flight
        self._pushed = pushed
        self._warn = warn
        self._started = time.monotonic()
        self._finished = 0

    @property
    def record(self) -> Record | None:
        """The loop's record as the run knows it (read it; never change it)."""
        return self._record()

    @property
    def slots(self) -> tuple[str, ...]:
        """The device slots by label (`gpu 0`, `cpu`)."""
        return tuple(s.label for s in self._slots.slots) if self._slots is not None else ()

    def in_flight(self) -> tuple[Flight, ...]:
        """The experiments running now, by worker."""
        return tuple(Flight(f.worker, f.number, f.device, f.phase)
                     for _, f in sorted(self._in_flight().items()))

    def throughput(self) -> Throughput:
        """Experiments this run recorded an hour, and how busy the slots were, since the run started."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        busy = 0.0
        if self._slots is not None and self._slots.slots:
            busy = min(1.0, sum(self._slots.busy_s) / (len(self._slots.slots) * elapsed))
        return Throughput(self._finished, self._finished * 3600 / elapsed, busy)

    def counted(self, attempt: Attempt) -> None:
        """The session tells the view an experiment was recorded (for the throughput)."""
        if attempt.status != "baseline":
            self._finished += 1

    def pushed(self) -> bool:
        """Whether the research branch is on the remote (a pull request can be opened from it)."""
        return self._pushed()

    def warn(self, text: str) -> None:
        """Say something the user should know (every listener hears it)."""
        self._warn(text)


class Listener:
    """Told what happens during a run; every method does nothing unless a listener overrides it."""

    def on_start(self, run: RunView) -> None:
        """The run starts (after the record is loaded and any earlier run's attempts recovered)."""

    def on_warning(self, run: RunView, text: str) -> None:
        """Something the user should know."""

    def on_phase(self, run: RunView, experiment: int, phase: str) -> None:
        """An experiment enters a phase (agent, evaluating, guards)."""

    def on_seed(self, run: RunView, seed: int) -> None:
        """A seed of the loop's own evaluation starts."""

    def on_seed_done(self, run: RunView, seed: int, error: str) -> None:
        """A seed ended ('' when it gave a metric)."""

    def on_attempt(self, run: RunView, attempt: Attempt) -> None:
        """An attempt is recorded."""

    def on_end(self, run: RunView, reason: str) -> None:
        """The run ends, for this reason."""


class _Partial(Listener):
    """A listener object that implements only some of the methods (tests, benchmarks, plugins)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        for name in ("on_start", "on_warning", "on_phase", "on_seed", "on_seed_done", "on_attempt", "on_end"):
            method = getattr(inner, name, None)
            if method is not None:
                setattr(self, name, method)


def listener(obj: Any) -> Listener:
    """obj as a Listener: itself when it is one, else the methods it has, the rest doing nothing."""
    return obj if isinstance(obj, Listener) else _Partial(obj)


class Audience:
    """The run's listeners, told on the thread that started the run (the PR view and the printers are not
    thread-safe): an event from a worker's thread waits in a queue until that thread drains it.
    """

    def __init__(self, listeners: list[Listener]) -> None:
        self.listeners = listeners  # the session's list: a listener added later (the PR view) is told too
        self._events: queue.SimpleQueue[Callable[[Listener], None]] = queue.SimpleQueue()

    def tell(self, event: Callable[[Listener], None]) -> None:
        """Give every listener the event: now on the run's thread, from a worker at the next drain."""
        if threading.current_thread() is not threading.main_thread():
            self._events.put(event)
            return
        self.drain()
        for each in self.listeners:
            event(each)

    def drain(self) -> None:
        """Pass on what the workers said, in order."""
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            for each in self.listeners:
                event(each)
