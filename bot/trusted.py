"""The trusted side of an evaluation: the files no agent can change, copied where no pipeline ran."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path, PurePosixPath

from . import safefile
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
    """Copy the trusted files of tree into target (created); the scorer runs there, never in tree.

    Read from the agent's worktree, so without following links: a link stays a link (the base may hold
    some; the scorer's sandbox decides what it may read through one), a FIFO or device is refused, and no
    folder on the way may be a link. Raise UntrustedFileError for anything that is not a file or a link.
    """
    target.mkdir(parents=True, exist_ok=True)
    for relative in trusted_paths(tree, loop):
        destination = target / relative
        try:
            link = safefile.readlink_untrusted(tree, relative)
        except safefile.MissingFileError:  # deleted in the tree: nothing to copy
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        if link is not None:
            os.symlink(link, destination)
            continue
        with safefile.open_untrusted(tree, relative) as source, destination.open("wb") as copy:
            shutil.copyfileobj(source, copy)
            os.chmod(destination, stat.S_IMODE(os.fstat(source.fileno()).st_mode))
    return target


def export_trusted(repo: Git, commit: str, loop: Loop, target: Path) -> Path:
    """Write commit's trusted files into target (created) from git's objects, never from a working tree.

    Services start here: an agent's file in the tree (a `json.py` beside a service's script, a
    `sitecustomize.py`) is not in the commit's objects, so it cannot reach what runs on the host.
    """
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    listed = repo.run("ls-tree", "-r", "-z", "--full-tree", commit, strip=False).split("\0")
    for item in listed:
        if not item:
            continue
        meta, relative = item.split("\t", 1)
        mode, kind, sha = meta.split()
        parts = PurePosixPath(relative).parts
        if kind != "blob" or ".." in parts or PurePosixPath(relative).is_absolute():
            continue  # a submodule has no files here; git refuses `..` in trees, and so do we
        if not (matches_any(relative, loop.all_protected) or not matches_any(relative, loop.editable)):
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        data = repo.objects.read_blobs([sha])[0]  # one at a time: a repository's data files can be large
        if mode == "120000":
            # A link is written only when it stays inside the copy: one leading out could reach the tree.
            link = os.fsdecode(data)
            if not os.path.isabs(link) and Path(os.path.normpath(destination.parent / link)).is_relative_to(root):
                destination.symlink_to(link)
            continue
        destination.write_bytes(data)
        if mode == "100755":
            destination.chmod(0o755)
    return target
