"""Checks before any evaluation, from `evaluate.validate`: broken code costs seconds, not a GPU run."""

from __future__ import annotations

from pathlib import Path

from . import safefile
from .config import Loop
from .git import Change

SOURCE_BYTES = 10_000_000  # a changed .py file bigger than this is not compiled but refused


def failure(tree: Path, changes: list[Change], loop: Loop) -> str | None:
    """Why the changed files fail the configured checks, or None when they pass."""
    if "python" in loop.evaluate.validate_:
        return _python(tree, [c.path for c in changes if c.status != "D" and c.path.endswith(".py")])
    return None


def _python(tree: Path, paths: list[str]) -> str | None:
    """The first changed .py file that does not compile (with the bot's Python; nothing runs)."""
    for relative in paths:
        try:  # the agent wrote these files: a link, a FIFO or a huge file is refused, never followed
            source = safefile.read_untrusted(tree, relative, SOURCE_BYTES)
        except safefile.MissingFileError:
            continue
        except safefile.UntrustedFileError as exc:
            return f"{exc.message}: a changed .py file must be a regular file up to {SOURCE_BYTES:,} bytes"
        try:
            compile(source, relative, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return f"{relative}:{exc.lineno or 0}: does not compile: {exc.msg}"
        except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
            return f"{relative}: does not compile: {exc.__class__.__name__}"
    return None
