"""The trusted side of an evaluation: the files no agent can change, copied where no pipeline ran."""

from __future__ import annotations

import shutil
from pathlib import Path

from .config import Loop
from .git import Git
from .globs import matches_any


def trusted_paths(tree: Path, loop: Loop) -> list[str]:
    """Tracked files the agent cannot change: protected ones, and everything outside `editable`.

    The diff check refuses any change to them and the loop restores protected ones from the base
    before evaluating, so here they are the base commit's files.
    """
    listed = Git(tree).run("ls-files", "-z", strip=False).split("\0")
    return [p for p in listed if p and (matches_any(p, loop.all_protected) or not matches_any(p, loop.editable))]


def copy_trusted(tree: Path, loop: Loop, target: Path) -> Path:
    """Copy the trusted files of tree into target (created); the scorer runs there, never in tree."""
    target.mkdir(parents=True, exist_ok=True)
    for relative in trusted_paths(tree, loop):
        source = tree / relative
        if not source.exists() and not source.is_symlink():  # deleted in the tree: nothing to copy
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)
    return target
