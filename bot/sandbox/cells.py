"""Spawner threads that live in a pids cgroup of their own (cgroup v1), so a phase is born inside its limit.

Moving a process into a cgroup takes the kernel's cgroup_threadgroup_rwsem for writing, which waits for an
RCU grace period unless another move happened a moment before: about 10 ms, paid by every sandboxed phase
whose child joined a fresh cgroup (measured: python -m benchmarks.sandbox_phase). A child is born in the
cgroup of the thread that forks it, and forking takes that lock only for reading. cgroup v1 lets one thread
of a process sit in a cgroup of its own; so each cell is a thread moved once into a pids cgroup, and a phase's
child is forked from it: no move per phase.

Only the pids controller: a thread of the bot in a memory cgroup would make the bot a candidate of that
cgroup's OOM killer (the kernel scores a task by its process's memory), so a memory limit still has the child
join a per-phase group (bot/sandbox/limits.py). cgroup v2 keeps a process's threads together (outside threaded
subtrees), so there the child joins a per-phase group too.
"""

from __future__ import annotations

import atexit
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .. import process

T = TypeVar("T")
PREFIX = "arl-sandbox-"  # the same as a per-phase group's: one sweep removes what a killed bot left
LEAVE_S = 0.5  # how long a closing cell waits for its ended thread to leave the cgroup
SETTLE_S = 0.05  # how long an ended phase's killed processes may take to be reaped before the cell is dropped

_free: list[Cell] = []
_all: list[Cell] = []
_lock = threading.Lock()


class Cell:
    """One thread in its own pids cgroup; `spawn` runs a callable (a Popen) on it, so its child is born there."""

    def __init__(self, parent: Path) -> None:
        self.group = parent / f"{PREFIX}{uuid.uuid4().hex[:12]}"
        self.group.mkdir()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="arl-sandbox-cell")
        try:
            self._thread.submit(self._join).result()
        except (OSError, RuntimeError):
            self.close()
            raise

    def _join(self) -> None:
        # v1's `tasks` takes one thread: the rest of the bot stays where it is.
        (self.group / "tasks").write_text(str(threading.get_native_id()))

    def spawn(self, make: Callable[[], T]) -> T:
        """make() run on this cell's thread: a process it forks is born in the cell's cgroup."""
        return self._thread.submit(make).result()

    def idle(self) -> bool:
        """Whether the cell counts only its own thread, soon: a process counts until it is reaped.

        bwrap's outer process exits without waiting for the sandbox's init, which then comes to us
        (process.reap_adopted) a moment later; a zombie nobody reaps would count against every later phase,
        so a cell that does not settle is not used again.
        """
        deadline = time.monotonic() + SETTLE_S
        while True:
            process.reap_adopted()
            try:
                if int((self.group / "pids.current").read_text()) <= 1:
                    return True
            except (OSError, ValueError):
                return False
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)

    def close(self) -> None:
        """End the thread (it leaves the cgroup as it ends), then remove the cgroup."""
        self._thread.shutdown(wait=True)
        # Python's join returns a moment before the kernel has taken the thread out of the cgroup.
        deadline = time.monotonic() + LEAVE_S
        while True:
            try:
                self.group.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    return  # a later bot's sweep removes it
                time.sleep(0.001)


def take(parent: Path) -> Cell | None:
    """A free cell below parent (made when none is free), or None where the thread cannot join one."""
    with _lock:
        for cell in _free:
            if cell.group.parent == parent:
                _free.remove(cell)
                return cell
    try:
        cell = Cell(parent)
    except (OSError, RuntimeError):  # RuntimeError: no thread could be started (a thread limit)
        return None
    with _lock:
        if not _all:
            atexit.register(_close_all)
        _all.append(cell)
    return cell


def give_back(cell: Cell) -> None:
    """The phase is over and the cell empty: the next phase may use it."""
    with _lock:
        _free.append(cell)


def _close_all() -> None:
    with _lock:
        cells = list(_all)
        _all.clear()
        _free.clear()
    for cell in cells:
        cell.close()
