"""Resource limits for one sandboxed run: a cgroup where the bot may make one, rlimits otherwise.

The process limit on cgroup v1 comes from a cell (bot/sandbox/cells.py): the child is forked by a thread
that already lives in a pids cgroup, so it is born inside the limit without a move into it per phase.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from ..process import Spawner
from . import cells
from .base import NOTE_PREFIX, Limits

CGROUP_ROOT = Path("/sys/fs/cgroup")
PREFIX = cells.PREFIX
STALE_S = 300  # an empty cgroup this old belongs to no run starting right now
CANNOT_CONFINE = 125  # the exit status of a phase whose cgroups or rlimits could not be applied
WATCH_S = 0.1  # the shortest time between two looks at the writable folders' size
MAX_ENTRIES = 1_000_000  # files and folders the writable folders may hold (each look walks them all)
KILL_WAIT_S = 1.0  # how long a phase's cgroup is emptied for before it is left (and swept by a later bot)


class Confinement:
    """The limits of one run: give child_setup() to the child, read what was hit with verdict(), then exit."""

    def __init__(self, limits: Limits, *, cgroups: bool = True) -> None:
        self.limits = limits
        self.use_cgroups = cgroups
        self.groups: dict[str, Path] = {}  # controller -> this run's cgroup directory (the child joins it)
        self.version: dict[str, int] = {}
        self.cell: cells.Cell | None = None  # the pids cgroup the child is born in (v1), instead of groups["pids"]
        self._max_before = 0  # the cell's pids.events "max" count before this run: the cell outlives it

    def __enter__(self) -> Confinement:
        wanted = {"pids": self.limits.processes, "memory": self.limits.memory_mb}
        for controller, value in wanted.items():
            if value is not None and self.use_cgroups and not (controller == "pids" and self._take_cell(value)):
                self._make(controller, value)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for group in self.groups.values():
            _kill_all(group)
            with contextlib.suppress(OSError):
                group.rmdir()
        if self.cell is not None:
            if _kill_all(self.cell.group, spare=os.getpid()) and self.cell.idle():
                cells.give_back(self.cell)
            else:  # something outlived the kill: never hand this cgroup's count to another phase
                self.cell.close()

    @property
    def enforced(self) -> dict[str, str]:
        """Each limit that is set -> how it is enforced."""
        out: dict[str, str] = {}
        if self.limits.processes is not None:
            out["processes"] = ("cgroup v1 pids.max" if self.cell is not None
                                else f"cgroup v{self.version['pids']} pids.max" if "pids" in self.groups
                                else "RLIMIT_NPROC (per user; not enforced for root)")
        if self.limits.memory_mb is not None:
            out["memory"] = (f"cgroup v{self.version['memory']} memory limit" if "memory" in self.groups
                             else "RLIMIT_AS (per process, address space)")
        if self.limits.cpu_seconds is not None:
            out["cpu"] = "RLIMIT_CPU (per process)"
        return out

    def child_setup(self) -> Callable[[], None] | None:
        """What the child runs between fork and exec: join this run's cgroups, then set its rlimits.

        In the child itself, before exec: nothing it starts can be born outside the cgroups (writing its pid
        from here after the start would race with its forks), and no `sh` or `prlimit` is started for it
        (an exec each, every phase). Everything is computed here, in the parent; the child only writes and sets.
        """
        rlimits: list[tuple[int, int]] = []
        if self.limits.cpu_seconds is not None:
            rlimits.append((resource.RLIMIT_CPU, self.limits.cpu_seconds))
        if self.limits.memory_mb is not None and "memory" not in self.groups:
            rlimits.append((resource.RLIMIT_AS, self.limits.memory_mb * 1024 * 1024))
        if self.limits.processes is not None and "pids" not in self.groups and self.cell is None:
            rlimits.append((resource.RLIMIT_NPROC, self.limits.processes))
        procs = [os.fsencode(group / "cgroup.procs") for group in self.groups.values()]
        if not rlimits and not procs:
            return None  # nothing to do between fork and exec: the child can be started by vfork

        def setup() -> None:
            try:
                for path in procs:
                    fd = os.open(path, os.O_WRONLY)
                    try:
                        os.write(fd, str(os.getpid()).encode())
                    finally:
                        os.close(fd)
                for kind, value in rlimits:
                    resource.setrlimit(kind, (value, value))
            except (OSError, ValueError) as exc:
                # Never run outside the limits: the phase fails as a crash that says why (stderr is its pipe).
                os.write(2, f"{NOTE_PREFIX}cannot apply the phase's limits: {exc}\n".encode())
                os._exit(CANNOT_CONFINE)

        return setup

    def spawn_on(self) -> Spawner | None:
        """Where the child must be forked (the cell's thread), or None: anywhere."""
        return self.cell.spawn if self.cell is not None else None

    def verdict(self) -> str:
        """Which limit the run hit, in words, or empty."""
        hits = []
        if "memory" in self.groups:
            name = "memory.oom_control" if self.version["memory"] == 1 else "memory.events"
            if _counter(self.groups["memory"] / name, "oom_kill") > 0:
                hits.append(f"the memory limit ({self.limits.memory_mb} MB) was reached and the kernel killed it")
        pids_hit = (_counter(self.cell.group / "pids.events", "max") > self._max_before if self.cell is not None
                    else "pids" in self.groups and _counter(self.groups["pids"] / "pids.events", "max") > 0)
        if pids_hit:
            hits.append(f"the process limit ({self.limits.processes}) was reached: a fork failed")
        return "; ".join(hits)

    def _take_cell(self, processes: int) -> bool:
        """Use a cell for the process limit where the pids controller is v1 and ours to write."""
        found = _own_cgroup("pids")
        if found is None or found[1] != 1:
            return False
        _sweep(found[0])
        cell = cells.take(found[0])
        if cell is None:
            return False
        try:
            (cell.group / "pids.max").write_text(str(processes + 1))  # the cell's own thread counts as one
        except OSError:
            cell.close()
            return False
        self.cell = cell
        self._max_before = _counter(cell.group / "pids.events", "max")
        return True

    def _make(self, controller: str, value: int) -> None:
        """Create this run's cgroup below ours for controller; leave it out where that is not allowed."""
        found = _own_cgroup(controller)
        if found is None:
            return
        parent, version = found
        _sweep(parent)
        group = parent / f"{PREFIX}{uuid.uuid4().hex[:12]}"
        try:
            # Written only when not yet enabled: the write locks the hierarchy and waits until the groups of
            # earlier phases, removed a moment ago, have finished going offline.
            control = parent / "cgroup.subtree_control"
            if version == 2 and controller not in control.read_text().split():
                control.write_text(f"+{controller}")
            group.mkdir()
        except OSError:
            return
        try:
            if controller == "pids":
                (group / "pids.max").write_text(str(value))
            elif version == 1:
                size = str(value * 1024 * 1024)
                (group / "memory.limit_in_bytes").write_text(size)
                with contextlib.suppress(OSError):  # no swap accounting: nothing to close off
                    (group / "memory.memsw.limit_in_bytes").write_text(size)
            else:
                (group / "memory.max").write_text(str(value * 1024 * 1024))
                with contextlib.suppress(OSError):
                    (group / "memory.swap.max").write_text("0")
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            return
        self.groups[controller] = group
        self.version[controller] = version


@functools.cache
def _own_cgroup(controller: str) -> tuple[Path, int] | None:
    """The directory of the bot's own cgroup for controller, and the cgroup version, if writable.

    Looked up once per process: the bot stays in its cgroup, and each phase would otherwise read
    /proc/self/cgroup and probe the hierarchy again.
    """
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    v2_path = None
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            directory = CGROUP_ROOT / controller / path.lstrip("/")
            if (directory / "cgroup.procs").exists() and os.access(directory, os.W_OK):
                return directory, 1
        if names == "":
            v2_path = path
    if v2_path is not None:
        directory = CGROUP_ROOT / v2_path.lstrip("/")
        try:
            available = (directory / "cgroup.controllers").read_text().split()
        except OSError:
            return None
        if controller in available and os.access(directory, os.W_OK):
            return directory, 2
    return None


def _counter(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _kill_all(group: Path, spare: int | None = None) -> bool:
    """SIGKILL whatever is still in the cgroup but spare (normally nothing: the pid namespace took it along).

    Whether the cgroup is empty (but spare) in the end.
    """
    # Processes of the ended pid namespace are usually still leaving the cgroup when the phase returns:
    # look again soon, then less often (a fixed 20 ms wait cost most phases 20 ms); give up after KILL_WAIT_S.
    deadline = time.monotonic() + KILL_WAIT_S
    pause = 0.0005
    while True:
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split() if int(p) != spare]
        except OSError:
            return True
        if not pids or time.monotonic() > deadline:
            return not pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


_swept: dict[Path, float] = {}  # parent -> when this process last swept it


def _sweep(parent: Path) -> None:
    """Remove empty cgroups left by a bot that was killed before it could clean up.

    At most once per STALE_S per parent: a group becomes stale only after that long, so looking at every
    phase (a directory listing each time) finds nothing more.
    """
    now = time.monotonic()
    if now - _swept.get(parent, -STALE_S) < STALE_S:
        return
    _swept[parent] = now
    cutoff = time.time() - STALE_S
    for stale in parent.glob(f"{PREFIX}*"):
        with contextlib.suppress(OSError):  # not empty: in use by a run going on right now
            if stale.stat().st_mtime < cutoff:
                stale.rmdir()


class DiskGuard:
    """Measures a phase's writable folders while it runs; `over()` turns True once they pass the cap.

    They are host folders (scratch, the agent's workdir and HOME), often under a host /tmp that is itself
    a tmpfs, so what a phase writes there can fill the host's memory or disk. A walk is not a quota: a
    fast writer can pass the cap by what it writes between two looks (one look every WATCH_S at least, or
    ten times as long as the last walk took, so that a folder of many files does not eat the bot's CPU).
    """

    def __init__(self, folders: list[Path], limit_bytes: int, *, max_entries: int = MAX_ENTRIES) -> None:
        self.folders = folders
        self.limit = limit_bytes
        self.max_entries = max_entries
        self.reason = ""  # why the phase was stopped, once it was
        self._next = 0.0

    def over(self) -> bool:
        """Whether the folders hold more than the cap (measured at most every so often)."""
        now = time.monotonic()
        if self.reason or now < self._next:
            return bool(self.reason)
        used, entries = usage(self.folders, self.max_entries)
        spent = time.monotonic() - now
        self._next = time.monotonic() + max(WATCH_S, 10 * spent)
        if entries > self.max_entries:
            self.reason = (f"the writable folders hold more than {self.max_entries:,} files "
                           f"(the limit with {self.limit // 2**20:,} MB); the phase was stopped")
        elif used > self.limit:
            self.reason = (f"the writable folders reached {used // 2**20:,} MB, past the {self.limit // 2**20:,} MB "
                           "allowed; the phase was stopped")
        return bool(self.reason)


def usage(folders: list[Path], max_entries: int) -> tuple[int, int]:
    """Bytes on disk and entries below folders, without following links; stops counting past max_entries."""
    used = entries = 0
    pending = [str(folder) for folder in folders]
    while pending and entries <= max_entries:
        try:
            scan = os.scandir(pending.pop())
        except OSError:  # removed while we looked, or unreadable: not ours to count
            continue
        with scan:
            for entry in scan:
                entries += 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                used += info.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
    return used, entries
