"""Checks before any evaluation, from `evaluate.validate`: broken code costs seconds, not a GPU run."""

from __future__ import annotations

from pathlib import Path

from .config import Loop
from .git import Change


def failure(tree: Path, changes: list[Change], loop: Loop) -> str | None:
    """Why the changed files fail the configured checks, or None when they pass."""
    if "python" in loop.evaluate.validate_:
        return _python(tree, [c.path for c in changes if c.status != "D" and c.path.endswith(".py")])
    return None


def _python(tree: Path, paths: list[str]) -> str | None:
    """The first changed .py file that does not compile (with the bot's Python; nothing runs)."""
    for relative in paths:
        path = tree / relative
        if not path.is_file():
            continue
        try:
            compile(path.read_bytes(), relative, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return f"{relative}:{exc.lineno or 0}: does not compile: {exc.msg}"
        except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
            return f"{relative}: does not compile: {exc.__class__.__name__}"
    return None
