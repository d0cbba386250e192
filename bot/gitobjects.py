"""Git objects written and read in-process: blobs, trees and commits through gitdb's loose-object writer (no git
process per object), blobs read through one long-lived `git cat-file --batch`.

The record is written this way (bot/store.py), so appending an attempt costs the same at 10 and 10,000.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from .errors import GitError

TREE_MODE = "40000"
BLOB_MODE = "100644"


def identity_env() -> dict[str, str]:
    """The environment for commits the bot makes: the user's identity if set, else the bot's."""
    env = dict(os.environ)
    env.setdefault("GIT_AUTHOR_NAME", "arl-bot")
    env.setdefault("GIT_AUTHOR_EMAIL", "arl-bot@users.noreply.github.com")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    return env


def _ident(text: str) -> str:
    # A name or email with '<', '>' or a newline would corrupt the commit header.
    return "".join(ch for ch in text if ch not in "<>\n") or "arl-bot"


class Objects:
    """The object database of one repository; command gives the argv and environment git runs with there."""

    def __init__(self, root: Path, common_dir: Path,
                 command: Callable[[list[str]], tuple[list[str], dict[str, str]]]) -> None:
        self.root = root
        self.common_dir = common_dir
        self.command = command
        self._loose: Any = None  # gitdb's LooseObjectDB, made when the first object is written
        self._cat: subprocess.Popen[bytes] | None = None
        self._cat_lock = threading.Lock()

    def _store(self, kind: bytes, data: bytes) -> str:
        # gitdb's loose-object writer runs in-process; GitPython's own odb spawns `git hash-object`.
        # Imported here: commands that only read (`results`) never pay for it.
        from gitdb import LooseObjectDB  # type: ignore[import-untyped]  # gitdb ships no type hints
        from gitdb.base import IStream  # type: ignore[import-untyped]

        if self._loose is None:
            self._loose = LooseObjectDB(str(self.common_dir / "objects"))
        stream = self._loose.store(IStream(kind, len(data), BytesIO(data)))
        return stream.hexsha.decode() if isinstance(stream.hexsha, bytes) else str(stream.hexsha)

    def store_blob(self, data: bytes) -> str:
        """Write a blob and return its SHA."""
        return self._store(b"blob", data)

    def store_tree(self, entries: dict[str, tuple[str, str]]) -> str:
        """Write a tree of name -> (mode, sha); mode "40000" marks a subtree."""
        def order(name: str) -> bytes:  # git sorts a subtree as if its name ended in "/"
            return (name + "/" if entries[name][0] == TREE_MODE else name).encode()

        body = b"".join(
            f"{entries[name][0]} {name}".encode() + b"\0" + bytes.fromhex(entries[name][1])
            for name in sorted(entries, key=order)
        )
        return self._store(b"tree", body)

    def store_commit(self, tree: str, parents: list[str], message: str) -> str:
        """Write a commit as the bot (or GIT_AUTHOR_*/GIT_COMMITTER_* when set)."""
        env = identity_env()
        stamp = f"{int(time.time())} +0000"
        author = f"{_ident(env['GIT_AUTHOR_NAME'])} <{_ident(env['GIT_AUTHOR_EMAIL'])}> {stamp}"
        committer = f"{_ident(env['GIT_COMMITTER_NAME'])} <{_ident(env['GIT_COMMITTER_EMAIL'])}> {stamp}"
        head = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents)
        text = f"{head}author {author}\ncommitter {committer}\n\n{message.rstrip()}\n"
        return self._store(b"commit", text.encode())

    def read_blobs(self, shas: list[str]) -> list[bytes]:
        """Read many blobs."""
        # Our own long-lived `git cat-file --batch`, not GitPython's: that one would inherit all of os.environ.
        with self._cat_lock:
            if self._cat is None or self._cat.poll() is not None:
                argv, env = self.command(["cat-file", "--batch"])
                self._cat = subprocess.Popen(argv, cwd=self.root, env=env, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            cat = self._cat
            assert cat.stdin is not None and cat.stdout is not None
            blobs = []
            for sha in shas:  # one at a time: both pipes stay drained whatever the sizes
                cat.stdin.write(sha.encode("ascii") + b"\n")
                cat.stdin.flush()
                header = cat.stdout.readline().split()
                if len(header) != 3:
                    raise GitError("cat-file --batch", f"object {sha} is missing: {b' '.join(header).decode()}")
                blobs.append(cat.stdout.read(int(header[2])))
                cat.stdout.read(1)  # the newline after each object
            return blobs

    def close(self) -> None:
        """End the object reader, if one was started (it also ends by itself when this process does)."""
        with self._cat_lock:
            if self._cat is not None:
                if self._cat.stdin is not None:
                    self._cat.stdin.close()
                self._cat.wait()
                self._cat = None
