"""Output into a pipe that closed (`arl-bot eval | head`): stop printing, never stop the work."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast


class Unbroken:
    """A text stream that swallows a broken pipe: the first failed write silences the rest.

    Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError wherever it happens:
    inside a run's progress line it would end the run, at the end of `eval` it prints a traceback.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        """Write, unless the reader has gone; then do nothing and say it was written."""
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        """Flush, unless the reader has gone."""
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._silence()

    def _silence(self) -> None:
        self.broken = True
        try:  # what is still buffered, and Python's own flush at exit, go to /dev/null instead of raising
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError):  # a stream without a file descriptor (a test's capture): nothing to redirect
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def unbroken() -> Iterator[None]:
    """Run the block with stdout and stderr that survive a reader closing the pipe."""
    import sys

    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = cast(TextIO, Unbroken(sys.stdout)), cast(TextIO, Unbroken(sys.stderr))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
