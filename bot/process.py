"""Run a child in a process group of its own, with a timeout that kills the whole group."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

TAIL_BYTES = 8_000  # how much of a log the record keeps
STDOUT_BYTES = 1_000_000  # how much stdout is kept for metric parsing
KILL_GRACE_S = 0.8  # between SIGTERM and SIGKILL: a timed-out phase has nothing worth saving
PR_SET_PDEATHSIG = 1  # prctl option: signal the child when its parent dies
PR_SET_CHILD_SUBREAPER = 36  # prctl option: orphaned descendants become this process's children
DRAIN_S = 1.0  # after the group is killed, how long to wait for a pipe a process outside it still holds
PIPE_READ = 1 << 16  # bytes per read from (or write to) a child's pipe
WATCH_S = 0.1  # how often run's watch is offered a look while the child runs

# Called with the process-group id of every child started here, so that a run killed by SIGKILL can
# find the groups it left behind and end them on its next start (see loop.Session._recover).
spawn_hooks: list[Callable[[int], None]] = []


class Spawner(Protocol):
    """Runs the Popen that forks a child on a thread of its choice (the child is born in that thread's cgroups)."""

    def __call__(self, make: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]: ...


@functools.cache
def _become_reaper() -> None:
    """Orphans of our children's children come to us, not to PID 1, and we reap them (reap_adopted).

    bwrap's outer process exits without waiting for the sandbox's init; a PID 1 that never reaps (many
    containers run an application as PID 1) would keep each as a zombie: a pid and a pids-cgroup count,
    one per sandboxed phase, until pid_max (often 32768) runs out overnight.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)


def reap_adopted() -> None:
    """Reap the zombies among our children that we never started ourselves.

    Never a child we started: its Popen must get its status (a child reaped behind its back reads as exit 0).
    We start none in a pid namespace of its own, nor one in a session that it does not lead and that is not ours
    (subprocess.run's share our session; run's lead their own). A sandbox's init (pid 1 of its namespace) and the
    orphans of a child's session are such.
    """
    own_session = os.getsid(0)
    me = str(os.getpid())
    for pid in _children():
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
                fields = dict(line.split(":", 1) for line in status.read().splitlines() if ":" in line)
            session = os.getsid(pid)
        except OSError:
            continue
        zombie = fields.get("State", "").split()[:1] == ["Z"] and fields.get("PPid", "").strip() == me
        nested = len(fields.get("NSpid", "").split()) > 1
        if zombie and (nested or session not in (own_session, pid)):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def _children() -> list[int]:
    """Our child processes, from each thread's /proc children list (Linux >= 3.5 with CONFIG_PROC_CHILDREN)."""
    found: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for task in tasks:
        with contextlib.suppress(OSError, ValueError), open(f"/proc/self/task/{task}/children", "rb") as listing:
            found += [int(pid) for pid in listing.read().split()]
    return found


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL if the bot dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _start_child(setup: Callable[[], None]) -> None:
    _die_with_parent()
    setup()


@dataclass(frozen=True)
class ProcessResult:
    """How a child ended and what it printed."""

    returncode: int | None  # None when killed for the timeout
    timed_out: bool
    stdout: str
    stderr: str
    duration_s: float
    stdout_dropped: int = 0  # bytes of stdout before the kept tail: not kept anywhere
    stderr_dropped: int = 0

    @property
    def ok(self) -> bool:
        """Exited by itself with status 0."""
        return self.returncode == 0 and not self.timed_out

    def tail(self, limit: int = TAIL_BYTES) -> str:
        """The last part of stdout and stderr, for the record (which says when the bot dropped output)."""
        text = self.stdout[-limit // 2 :]
        if self.stdout_dropped:
            text = f"[output truncated: the first {self.stdout_dropped:,} bytes of stdout were not kept]\n{text}"
        if self.stderr.strip():
            text += "\n--- stderr ---\n" + self.stderr[-limit // 2 :]
        return text


def group_alive(pgid: int) -> bool:
    """Whether any process is left in the group."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(pgid: int, leader: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after a grace period.

    leader is the group's first process when it is our child: it is reaped while we wait, or its
    zombie would keep the group looking alive for the whole grace period.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        if not group_alive(pgid):
            return
        # Zombies keep a group "alive" for killpg: orphans whose new parent (PID 1 in many containers) never
        # reaps them. They are dead already; waiting out the grace for them cost every such run 0.8 s (a git
        # fetch of a missing ref leaves its upload-pack so). SIGKILL below still reaches anything /proc hides.
        if not _live_member(pgid):
            break
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _live_member(pgid: int) -> bool:
    """Whether /proc shows a process of group pgid that is not a zombie."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return True  # cannot tell: treat the group as alive
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[-1].split()
        except OSError:
            continue  # gone meanwhile
        # proc(5): after the name come state (field 3) and pgrp (field 5)
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def run(
    argv: list[str],
    *,
    cwd: str | Path,
    env: dict[str, str],
    timeout: float,
    stdin: str | None = None,
    watch: Callable[[], bool] | None = None,
    child_setup: Callable[[], None] | None = None,
    spawn_on: Spawner | None = None,
    die_with_parent: bool = True,
) -> ProcessResult:
    """Run argv to completion or timeout; the whole process group is gone when this returns.

    The child's output is read from pipes as it comes, and only its last STDOUT_BYTES (stdout) and
    TAIL_BYTES (stderr) are kept: a child that prints gigabytes costs the bot neither memory nor disk.
    watch, called every WATCH_S or so while the child runs, ends the run early by returning True (the
    caller knows why; the result then has the status of the killed child). child_setup runs in the child
    between fork and exec (the sandbox joins its cgroups and sets rlimits there); spawn_on, when given, forks
    it from a thread of the sandbox's (bot/sandbox/cells.py). die_with_parent gives the child SIGKILL when the
    bot dies; a caller whose child sees to that itself (bwrap --die-with-parent) passes False, and a child
    with nothing to run before exec is then started by vfork, not by a fork of the whole bot (~2 ms).
    """
    start = time.monotonic()
    _become_reaper()
    preexec: Callable[[], None] | None = child_setup
    if die_with_parent:
        preexec = _die_with_parent if child_setup is None else functools.partial(_start_child, child_setup)

    def fork() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            start_new_session=True,  # own process group: a timeout or Ctrl-C kills every child too
            preexec_fn=preexec,
        )

    proc = fork() if spawn_on is None else spawn_on(fork)
    for hook in spawn_hooks:
        hook(proc.pid)
    out, err = _Tail(STDOUT_BYTES), _Tail(TAIL_BYTES)
    pump = _Pump(proc, out, err, stdin)
    timed_out = False
    try:
        timed_out = pump.until_exit(start + timeout, watch) == "timeout"
    finally:
        # Also after a clean exit: a child left running in the background must not outlive the phase.
        kill_group(proc.pid, proc)
        proc.wait()
        reap_adopted()
        pump.drain(time.monotonic() + DRAIN_S)  # what was written before the end; a leaked writer gets DRAIN_S
        pump.close()
    return ProcessResult(
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        stdout=out.text(),
        stderr=err.text(),
        duration_s=time.monotonic() - start,
        stdout_dropped=out.dropped,
        stderr_dropped=err.dropped,
    )


class _Tail:
    """The last `limit` bytes of a stream, and how many came before them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        self.buffer += data
        if len(self.buffer) > 2 * self.limit:  # trim in batches: amortised linear in what was read
            del self.buffer[: len(self.buffer) - self.limit]

    @property
    def dropped(self) -> int:
        return max(0, self.total - self.limit)

    def text(self) -> str:
        return bytes(self.buffer[-self.limit :]).decode("utf-8", errors="replace")


class _Pump:
    """Moves the child's stdin, stdout and stderr through one selector in this thread (no deadlock)."""

    def __init__(self, proc: subprocess.Popen[bytes], out: _Tail, err: _Tail, stdin: str | None) -> None:
        self.proc = proc
        self.selector = selectors.DefaultSelector()
        assert proc.stdout is not None and proc.stderr is not None
        self.selector.register(proc.stdout, selectors.EVENT_READ, out)
        self.selector.register(proc.stderr, selectors.EVENT_READ, err)
        self.pending = memoryview(stdin.encode()) if stdin is not None else None
        if proc.stdin is not None:
            if self.pending:
                os.set_blocking(proc.stdin.fileno(), False)
                self.selector.register(proc.stdin, selectors.EVENT_WRITE, None)
            else:
                proc.stdin.close()
        self.exited: int | None = None  # a pidfd: readable when the child exits, so no polling
        with contextlib.suppress(AttributeError, OSError):  # Linux >= 5.3
            self.exited = os.pidfd_open(proc.pid)
            self.selector.register(self.exited, selectors.EVENT_READ, "exit")

    def until_exit(self, deadline: float, watch: Callable[[], bool] | None = None) -> str:
        """Pump until the child exits (""), the deadline passes ("timeout") or watch says stop ("watch")."""
        while self.proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            # Without a pidfd, poll now and then: a grandchild may hold the pipes open after the child ends.
            wait = min(left, 0.05) if self.exited is None else left
            self._step(min(wait, WATCH_S) if watch is not None else wait)
            if watch is not None and watch():
                return "watch"
        return ""

    def drain(self, deadline: float) -> None:
        """Read what is left in the pipes until they close or the deadline passes."""
        if self.exited is not None:
            self._forget(self.exited)
        while any(key.data is not None for key in self.selector.get_map().values()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._step(left)

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            self._forget(key.fileobj)
        self.selector.close()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _step(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            if key.data == "exit":
                self._forget(key.fileobj)
            elif isinstance(key.data, _Tail):
                data = os.read(key.fd, PIPE_READ)
                if data:
                    key.data.feed(data)
                else:
                    self._forget(key.fileobj)
            else:
                self._write(key.fileobj)

    def _write(self, stdin: object) -> None:
        assert self.proc.stdin is not None and self.pending is not None
        try:
            sent = os.write(self.proc.stdin.fileno(), self.pending[:PIPE_READ])
        except BlockingIOError:
            return
        except OSError:  # the child closed its stdin (BrokenPipeError): it does not want the rest
            sent = len(self.pending)
        self.pending = self.pending[sent:]
        if not self.pending:
            self._forget(stdin)
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def _forget(self, fileobj: object) -> None:
        try:
            self.selector.unregister(fileobj)  # type: ignore[arg-type]
        except (KeyError, ValueError):
            return  # forgotten before: its number may be another thread's file by now, so never close it again
        if isinstance(fileobj, int):
            with contextlib.suppress(OSError):
                os.close(fileobj)


def identity(pid: int) -> str:
    """What proves which process pid is: this boot and the process's start time (a pid is reused, the pair is not).

    Empty when pid is gone or /proc cannot say.
    """
    start = _start_time(pid)
    return f"{_boot_id()}/{start}" if start else ""


def still_ours(pgid: int, proof: str) -> bool:
    """Whether the process group pgid is still the one whose leader `identity` gave proof.

    Linux never hands out a pid that is still some group's id, so while any process is left in our group
    its leader's pid stays ours; once the group is gone, a new process may get the pid, and then its start
    time differs. After a reboot (another boot id) nothing is ours.
    """
    boot, _, start = proof.partition("/")
    if not proof or boot != _boot_id():
        return False
    now = _start_time(pgid)
    if now:
        return now == start
    return group_alive(pgid)  # the leader is gone but members are left: the id cannot have been reused


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()  # the command name in parentheses may hold spaces
    return fields[19] if len(fields) > 19 else ""  # field 22 of proc(5): starttime, in clock ticks since boot


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
