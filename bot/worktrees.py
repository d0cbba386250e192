"""The research worktree: made, repaired after the repository moved, or made anew after it was copied.

Git commands go through the Git adapter (bot/git.py, the only module that runs git); this module decides
which, from the links between a worktree's `.git` file and the repository's `worktrees/` entries.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GitError

if TYPE_CHECKING:
    from .git import Git


def research_worktree(repo: Git, path: Path, commit: str) -> Git:
    """A worktree of this repository at path with HEAD detached at commit: reused, repaired or made anew.

    Detached, so the research branch is checked out nowhere and the user can `git checkout` it; the
    loop moves the branch itself, by compare-and-swap. A worktree whose link is stale (the repository
    was moved) is repaired with `git worktree repair <path>`; one whose `.git` names another
    repository's gitdir (the repository was copied) is made anew, and the other clone's files are
    never touched (a repair would rewrite its link to point here).
    """
    path = Path(os.path.abspath(path))
    if path.resolve() != path:  # `.arl-bot` linked to another clone's: deleting or writing would reach it
        raise GitError("worktree add", f"{path} leads to {path.resolve()} through a link, and arl-bot never "
                       "deletes or writes another folder through one",
                       hint=f"remove the link (`rm {path.parent.parent}`); arl-bot makes its worktree there itself")
    state = worktree_link(repo, path)
    if state == "stale":
        # Only ever with the path: a bare `repair` also rewrites links of worktrees it finds elsewhere.
        # When it cannot mend the link the worktree is made anew below.
        with contextlib.suppress(GitError):
            repo.run("worktree", "repair", str(path))
        state = worktree_link(repo, path)
    _forget_foreign_entries(repo, path)
    if state != "ours":
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)  # our own hidden folder: a copy's files, or what a dead worktree left
        repo.run("worktree", "prune")
        path.parent.mkdir(parents=True, exist_ok=True)
        repo.run("worktree", "add", "--quiet", "--force", "--detach", str(path), commit)
    tree = type(repo)(path)
    # Detach a worktree an older arl-bot left with the branch checked out (git would refuse the user's checkout).
    tree.run("update-ref", "--no-deref", "HEAD", commit)
    return tree

def worktree_link(repo: Git, path: Path) -> str:
    """How the worktree at path is linked: "ours", "stale" (a gitdir that is gone), "foreign" or "absent".

    "ours": its `.git` file names a gitdir in this repository's worktrees/ whose `gitdir` file names
    it back. "foreign": it names a gitdir that exists elsewhere (another clone's), or is no link at all.
    """
    dot = path / ".git"
    if not dot.exists() and not dot.is_symlink():
        return "absent"
    if dot.is_symlink() or not dot.is_file():
        return "foreign"
    try:
        text = dot.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "foreign"
    if not text.startswith("gitdir:"):
        return "foreign"
    target = path / text.removeprefix("gitdir:").strip()  # git may write it relative (worktree.useRelativePaths)
    if not target.exists():
        return "stale"
    if target.resolve().parent != (repo.common_dir / "worktrees").resolve():
        return "foreign"
    return "ours" if _backlink(target) == dot.resolve() else "stale"

def _forget_foreign_entries(repo: Git, path: Path) -> None:
    """Remove this repository's worktree entries for path's name that point into another checkout.

    A copied repository's `.git/worktrees/<loop>` still names the original's worktree: git would
    keep the branch it has checked out locked there, and `git worktree repair` would rewrite the
    original's link. Only the entry here is removed; the worktree it names is left as it is.
    """
    admin = repo.common_dir / "worktrees"
    mine = (path / ".git").resolve()
    for entry in admin.iterdir() if admin.is_dir() else []:
        named = _backlink(entry)
        if named is None or named == mine or named.parent.name != path.name:
            continue
        if named.parent.parent.parts[-2:] != path.parent.parts[-2:]:
            continue  # not a bot's worktree (`.arl-bot/worktrees/<loop>`): the user's own, left alone
        points_back = named.is_file() and _gitdir_line(named) == entry.resolve()
        if not points_back:
            shutil.rmtree(entry)


def _gitdir_line(dot_git: Path) -> Path | None:
    """Where a worktree's `.git` file points (resolved), or None when it is no such file."""
    try:
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    return (dot_git.parent / text.removeprefix("gitdir:").strip()).resolve()


def _backlink(entry: Path) -> Path | None:
    """The `.git` file a worktree entry (`.git/worktrees/<name>`) names in its `gitdir` file, resolved."""
    try:
        text = (entry / "gitdir").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return (entry / text).resolve() if text else None
