"""Run a child in a process group of its own, with a timeout that kills the whole group."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

TAIL_BYTES = 8_000  # how much of a log the record keeps
STDOUT_BYTES = 1_000_000  # how much stdout is kept for metric parsing
KILL_GRACE_S = 0.8  # between SIGTERM and SIGKILL: a timed-out phase has nothing worth saving
PR_SET_PDEATHSIG = 1  # prctl option: signal the child when its parent dies

# Called with the process-group id of every child started here, so that a run killed by SIGKILL can
# find the groups it left behind and end them on its next start (see loop.Session._recover).
spawn_hooks: list[Callable[[int], None]] = []


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL if the bot dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class ProcessResult:
    """How a child ended and what it printed."""

    returncode: int | None  # None when killed for the timeout
    timed_out: bool
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        """Exited by itself with status 0."""
        return self.returncode == 0 and not self.timed_out

    def tail(self, limit: int = TAIL_BYTES) -> str:
        """The last part of stdout and stderr, for the record."""
        text = self.stdout[-limit // 2 :]
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
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run(
    argv: list[str],
    *,
    cwd: str | Path,
    env: dict[str, str],
    timeout: float,
    stdin: str | None = None,
) -> ProcessResult:
    """Run argv to completion or timeout; the whole process group is gone when this returns."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=err,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            start_new_session=True,  # own process group: a timeout or Ctrl-C kills every child too
            preexec_fn=_die_with_parent,
        )
        for hook in spawn_hooks:
            hook(proc.pid)
        timed_out = False
        try:
            if stdin is not None and proc.stdin is not None:
                try:
                    proc.stdin.write(stdin.encode())
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
        finally:
            # Also after a clean exit: a child left running in the background must not outlive the phase.
            kill_group(proc.pid, proc)
            proc.wait()
        return ProcessResult(
            returncode=None if timed_out else proc.returncode,
            timed_out=timed_out,
            stdout=_read_tail(out, STDOUT_BYTES),
            stderr=_read_tail(err, TAIL_BYTES),
            duration_s=time.monotonic() - start,
        )


def _read_tail(handle: IO[bytes], limit: int) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - limit))
    return handle.read().decode("utf-8", errors="replace")
