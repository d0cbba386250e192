"""Find what git must never see in the research worktree: nested repositories and files inside submodules.

A `.git` below the top (a folder, a `gitdir:` file or a symbolic link) makes the bot's own git treat that
folder as a repository of its own: `git add` and `git status` read its config and can run its fsmonitor
command, and the commit would hold a gitlink instead of the files that were evaluated. Files inside a
submodule's folder are skipped by `git add` without a word, so they too would be evaluated but not kept.
Everything here works on the file system alone (no git process) and never follows a symbolic link.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from .sanitize import path_list

MAX_NAMED = 5  # paths named in a reason


def is_dot_git(name: str) -> bool:
    """Whether a path component is `.git` in any case (git itself refuses to track `.GIT` and `.Git`)."""
    return name.lower() == ".git"


def hazards(root: Path, gitlinks: Iterable[str] = ()) -> list[str]:
    """Repository-relative paths git must not see: `.git` entries below the top, and anything in a submodule.

    gitlinks are the submodule paths of the commit the tree is on; in the bot's worktree their folders
    are always empty (submodules are never checked out there), so any entry inside one was planted.
    """
    return scan(root, gitlinks)[0]


def scan(root: Path, gitlinks: Iterable[str] = ()) -> tuple[list[str], bool]:
    """hazards(), and whether any `.gitattributes` file is in the tree (one walk for both)."""
    attributes = False
    links = {link.strip("/") for link in gitlinks}
    found: list[str] = []
    for link in sorted(links):
        path = root / link
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            found.append(link)
        elif path.is_dir():
            found += [f"{link}/{entry.name}" for entry in sorted(os.scandir(path), key=lambda e: e.name)]
    stack = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:  # unreadable: git cannot read it either, and the reset removes it
            continue
        for entry in entries:
            child = f"{rel}{entry.name}"
            if is_dot_git(entry.name):
                if rel:  # the top-level `.git` is the worktree's own
                    found.append(child)
                continue
            if child in links:
                continue
            attributes = attributes or entry.name == ".gitattributes"
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), child + "/"))
    return sorted(dict.fromkeys(found)), attributes


def reason(paths: list[str]) -> str:
    """Why an attempt with these paths is invalid, naming them."""
    shown = path_list(paths, MAX_NAMED)  # agent-chosen names: quoted as git quotes them
    return (f"planted a nested git repository or files inside a submodule: {shown}; the bot's git would "
            "read their config and hooks, and a commit cannot hold them (remove them and commit plain files)")


def remove(root: Path, paths: list[str]) -> None:
    """Delete each path below root, without following symbolic links, even folders left read-only."""
    for rel in paths:
        target = root / rel
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            target.unlink()
        elif target.is_dir():
            _open_up(target)
            shutil.rmtree(target)


def _open_up(top: Path) -> None:
    # An agent can leave folders without read, write or search permission; we own them, so open them.
    stack = [top]
    while stack:
        folder = stack.pop()
        os.chmod(folder, stat.S_IRWXU)
        stack += [Path(e.path) for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
