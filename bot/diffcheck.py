"""Check an agent's change against the loop's rules before anything is evaluated."""

from __future__ import annotations

from .config import Loop
from .git import Change
from .globs import matches_any
from .sanitize import path_list

MAX_LISTED = 5  # paths named in a reason


def violation(changes: list[Change], loop: Loop) -> str | None:
    """Why this change is invalid, or None when it may be evaluated."""
    if not changes:
        return "the agent changed nothing"
    protected = [c.path for c in changes if matches_any(c.path, loop.all_protected)]
    if protected:
        return f"changed protected paths: {_list(protected)}"
    outside = [c.path for c in changes if not matches_any(c.path, loop.editable)]
    if outside:
        return f"changed paths outside editable ({', '.join(loop.editable)}): {_list(outside)}"
    return None


def _list(paths: list[str]) -> str:
    # Agent-chosen names can hold newlines, escapes and bidi overrides: the reason names them as git quotes them.
    return path_list(paths, MAX_LISTED)
