"""SIGINT and SIGTERM as Interrupted, held back while the commit, the record and the push must agree."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .errors import Interrupted


class Signals:
    """Turn SIGINT and SIGTERM into Interrupted, except inside `hold()`, where they wait.

    A keep is a commit, a ref move, a record entry and a push; a signal halfway through would leave
    the branch and the record disagreeing, so those steps finish first and the signal lands after.
    Signals reach the main thread only: a worker thread's hold has nothing to defer (the scheduler
    stops workers between their phases instead).
    """

    def __init__(self) -> None:
        self._held = 0
        self._pending: int | None = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._held:
            self._pending = signum
            return
        raise Interrupted(f"stopped by {signal.Signals(signum).name}")

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Install the handlers for the duration (main thread only; elsewhere a no-op)."""
        try:
            previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: signals cannot be handled here
            yield
            return
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Defer signals until the block is done."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held and self._pending is not None:
                signum, self._pending = self._pending, None
                raise Interrupted(f"stopped by {signal.Signals(signum).name}")
