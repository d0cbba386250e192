"""One process per loop per clone: a second `arl-bot run` on the same loop is told who holds it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from .errors import LockedError


class LoopLock:
    """An exclusive flock that the kernel releases when the holder dies, even by SIGKILL."""

    def __init__(self, path: Path, loop: str) -> None:
        self.path = path
        self.loop = loop
        self._fd: int | None = None

    def __enter__(self) -> LoopLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockedError(
                f"loop {self.loop!r} is already running in this clone (pid {holder})",
                hint="wait for that run to finish, or stop it; the lock frees itself when it exits",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
