"""The sandbox interface: one method that runs a command under a policy."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Loop
from ..process import ProcessResult
from ..registry import available, load_plugin


@dataclass(frozen=True)
class Limits:
    """Resource limits for one phase; None means no limit."""

    memory_mb: int | None = None
    cpu_seconds: int | None = None
    processes: int | None = None


@dataclass(frozen=True)
class Policy:
    """What one phase (agent or evaluation) may do."""

    phase: str  # "agent" or "evaluation"
    writable: tuple[Path, ...]  # everything else is read-only
    network: bool
    env: dict[str, str]  # the whole environment the child sees
    limits: Limits = field(default_factory=Limits)


class Sandbox(ABC):
    """Runs commands isolated according to a Policy."""

    name: str = ""
    isolated: bool = True  # False only for `none`: the run and the PR body warn about it

    @abstractmethod
    def run(
        self, argv: list[str], *, cwd: Path, policy: Policy, timeout: float, stdin: str | None = None
    ) -> ProcessResult:
        """Run argv in cwd under policy; every process it started is gone when this returns."""


def choose_sandbox(loop: Loop) -> Sandbox:
    """The loop's sandbox; by default bubblewrap where it is installed and registered, else none."""
    if loop.sandbox is not None:
        return get_sandbox(loop.sandbox)
    if shutil.which("bwrap") and "bubblewrap" in available("arl_bot.sandboxes"):
        return get_sandbox("bubblewrap")
    return get_sandbox("none")


def get_sandbox(name: str) -> Sandbox:
    """The sandbox registered under name (entry point group `arl_bot.sandboxes`)."""
    cls = load_plugin("arl_bot.sandboxes", name)
    instance = cls()
    if not isinstance(instance, Sandbox):
        raise TypeError(f"{cls!r} is not a Sandbox")
    return instance
