"""Keep the record in git, on a ref of its own, so it travels with the repository and survives runners.

Layout of `refs/autoresearch/<loop>/record` (a chain of commits, one per appended item):

    meta.json                        where the loop started
    attempts/<shard>/<NNNNNN>.json   one file per attempt
    diffs/<shard>/<NNNNNN>.patch     the attempt's diff, kept or not (capped: see shorten_patch)
    notes/<shard>/<NNNNNN>.json      run starts and ends, redirects, pauses

Shards of 1,000 keep every tree small, so appending costs the same at attempt 10 and 10,000.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
from pathlib import Path

from .errors import DiskFullError, GitError, RecordError
from .git import BLOB_MODE, TREE_MODE, Git, identity_env
from .names import record_ref as record_ref  # where callers have always found it
from .record import Attempt, Meta, Note, Record

SHARD = 1000
PATCH_FILE_LIMIT = 1_000_000  # bytes of one file's diff kept in the record; larger ones are listed
PATCH_LIMIT = 10_000_000  # bytes of one attempt's diff kept in the record
# GitHub refuses any push with a blob over 100 MB, for good (and warns at 50 MB): no record file may come near.
ENTRY_LIMIT = 20_000_000  # bytes of one attempt's JSON; past it, its logs are cut to their tails
LOG_TAIL = 100_000  # characters of each log kept when an entry is cut
# Space set aside next to the record: when the disk fills, freeing it lets the attempt at hand be recorded
# (rather than found as "killed" on the next start) before the run stops.
RESERVE_BYTES = 2 * 1024 * 1024
LOW_SPACE = 256 * 1024  # git says only "couldn't write ...lock" when the disk is full: below this, it is
_SECTION = re.compile(r"^diff --git ", re.MULTILINE)
_INDEX = re.compile(r"^index [0-9a-f]+\.\.([0-9a-f]+)", re.MULTILINE)


def _shard_path(folder: str, number: int, suffix: str) -> str:
    return f"{folder}/{number // SHARD:03d}/{number:06d}{suffix}"


class RecordStore:
    """Reads and appends a loop's record through plumbing, never touching any checkout."""

    def __init__(self, git: Git, loop: str) -> None:
        self.git = git
        self.loop = loop
        self.ref = record_ref(loop)
        self._index = git.common_dir / "autoresearch" / f"{loop}.record-index"
        self._reserve = git.common_dir / "autoresearch" / f"{loop}.reserve"
        self._indexed_commit: str | None = None
        self._trees: dict[str, dict[str, tuple[str, str]]] = {}  # tree path -> name -> (mode, sha)

    def head(self) -> str | None:
        """The record's current commit."""
        return self.git.ref_value(self.ref)

    # -- reading ------------------------------------------------------------------------------------
    def load(self) -> Record | None:
        """The whole record, or None when the loop has never run."""
        head = self.head()
        if head is None:
            return None
        meta: Meta | None = None
        attempts: list[Attempt] = []
        notes: list[Note] = []
        for path, _, item in self._items(head):
            if isinstance(item, Exception):
                raise RecordError(
                    f"cannot read {path}: {item}", where=f"{self.ref}:{path}",
                    hint=f"inspect it with `git show {self.ref}:{path}`; `arl-bot results --repair "
                    f"--loop {self.loop}` moves damaged items to damaged/ in a new record commit you can review",
                )
            if isinstance(item, Meta):
                meta = item
            elif isinstance(item, Attempt):
                attempts.append(item)
            else:
                notes.append(item)  # in file order: notes are numbered
        if meta is None:
            raise RecordError("meta.json is missing", where=self.ref,
                              hint="the ref was not written by arl-bot; delete it to start over")
        attempts.sort(key=lambda a: a.experiment)
        return Record(meta=meta, attempts=attempts, notes=notes)

    def _items(self, commit: str) -> list[tuple[str, str, Meta | Attempt | Note | Exception]]:
        """(path, blob sha, parsed item or the error) for every record file; damaged/ is skipped."""
        entries = [(p, s) for p, s in self.git.tree_entries(commit)
                   if p == "meta.json" or p.startswith(("attempts/", "notes/"))]
        blobs = self.git.objects.read_blobs([s for _, s in entries])
        items: list[tuple[str, str, Meta | Attempt | Note | Exception]] = []
        for (path, sha), blob in zip(entries, blobs, strict=True):
            try:
                data = json.loads(blob)
                item: Meta | Attempt | Note
                if path == "meta.json":
                    item = Meta.from_dict(data)
                elif path.startswith("attempts/"):
                    item = Attempt.from_dict(data)
                else:
                    item = Note.from_dict(data)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                items.append((path, sha, exc))
                continue
            items.append((path, sha, item))
        return items

    def repair(self) -> list[str]:
        """Move every unreadable item to damaged/<path> in a new record commit; return what moved.

        Nothing is deleted: the damaged bytes stay in the record for a person to read and fix.
        """
        head = self.head()
        if head is None:
            return []
        bad = [(path, sha) for path, sha, item in self._items(head) if isinstance(item, Exception)]
        if not bad:
            return []
        env = {**os.environ, "GIT_INDEX_FILE": str(self._index)}
        self._index.parent.mkdir(parents=True, exist_ok=True)
        self.git.run("read-tree", head, env=env)
        for path, sha in bad:
            self.git.run("update-index", "--add", "--cacheinfo", f"100644,{sha},damaged/{path}", env=env)
            self.git.run("update-index", "--force-remove", "--", path, env=env)
        tree = self.git.run("write-tree", env=env)
        moved = ", ".join(p for p, _ in bad)
        commit = self.git.run("commit-tree", tree, "-p", head, "-m", f"repair: move damaged {moved}",
                              env=identity_env())
        self.git.run("update-ref", self.ref, commit, head)
        self.reset_index()
        return [p for p, _ in bad]

    def diff(self, experiment: int) -> str:
        """The recorded diff of an attempt ('' when it changed nothing)."""
        path = _shard_path("diffs", experiment, ".patch")
        try:
            return self.git.run("show", f"{self.ref}:{path}", strip=False)
        except GitError:
            return ""

    # -- writing ------------------------------------------------------------------------------------
    def create(self, meta: Meta) -> Record:
        """Start a new record."""
        body = json.dumps(dataclasses.asdict(meta), sort_keys=True, indent=1).encode()
        self._write({"meta.json": body}, f"start loop {meta.loop}", new=True)
        return Record(meta=meta)

    def write_meta(self, meta: Meta) -> None:
        """Replace meta.json (a rebase moves base_sha); the commit before it keeps the old one."""
        body = json.dumps(dataclasses.asdict(meta), sort_keys=True, indent=1).encode()
        self._write({"meta.json": body}, f"base of loop {meta.loop} moves to {meta.base_sha[:12]}")

    def append_attempt(self, attempt: Attempt, patch: str) -> None:
        """Add one attempt and its diff (shortened to fit the record; see shorten_patch)."""
        body = attempt.to_json().encode()
        if len(body) > ENTRY_LIMIT:
            attempt = dataclasses.replace(
                attempt, agent_log=attempt.agent_log[-LOG_TAIL:], eval_log=attempt.eval_log[-LOG_TAIL:],
                extra={**attempt.extra, "record_cut": f"logs cut to their last {LOG_TAIL:,} characters "
                                                      f"(the entry was {len(body):,} bytes)"})
            body = attempt.to_json().encode()
        files = {_shard_path("attempts", attempt.experiment, ".json"): body}
        if patch:
            kept = attempt.sha if attempt.status in ("keep", "baseline") else None
            files[_shard_path("diffs", attempt.experiment, ".patch")] = self.shorten_patch(patch, kept).encode()
        message = f"experiment {attempt.experiment}: {attempt.status}"
        try:
            self._write(files, message)
        except DiskFullError as full:
            if not self._release_reserve():
                raise
            # The reserve is free: record the attempt small (no diff, logs cut), then stop the run.
            small = dataclasses.replace(attempt, agent_log=attempt.agent_log[-LOG_TAIL:],
                                        eval_log=attempt.eval_log[-LOG_TAIL:],
                                        extra={**attempt.extra, "record_cut": "the disk was full: diff not stored"})
            self._write({_shard_path("attempts", attempt.experiment, ".json"): small.to_json().encode()}, message)
            raise DiskFullError(
                f"{full.message}; experiment {attempt.experiment} ({attempt.status}) was recorded in the space "
                "arl-bot keeps in reserve, without its diff, and the run stops here", path=full.path) from None
        self._keep_reserve()

    def _keep_reserve(self) -> None:
        """Set RESERVE_BYTES aside (once; again after it was used), if the disk has them."""
        if self._reserve.exists():
            return
        try:
            self._reserve.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._reserve, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)  # blocks really held, not a sparse file
            finally:
                os.close(fd)
        except OSError:
            self._reserve.unlink(missing_ok=True)  # no room even for that: the next write says so

    def _release_reserve(self) -> bool:
        try:
            self._reserve.unlink()
        except FileNotFoundError:
            return False
        return True

    def _disk_full(self, exc: OSError | None = None) -> DiskFullError | None:
        """The write failure as a DiskFullError when the disk (or quota) is full, else None."""
        where = str(self.git.common_dir)
        if exc is not None and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            cause = os.strerror(exc.errno)
        else:
            try:
                stat = os.statvfs(where)
            except OSError:
                return None
            if stat.f_bavail * stat.f_frsize >= LOW_SPACE:
                return None
            cause = f"{stat.f_bavail * stat.f_frsize // 1024} KB free"
        return DiskFullError(f"the disk holding {where} is full ({cause}): the record of loop {self.loop!r} "
                             "cannot be written", path=where)

    def shorten_patch(self, patch: str, commit: str | None) -> str:
        """The patch with each file's diff over PATCH_FILE_LIMIT (or past PATCH_LIMIT in all) listed instead.

        One 110 MB file made a 149 MB record entry (a binary diff is base85) that GitHub refuses for ever.
        A listed file keeps its path, size and blob SHA (enough to audit it, and to fetch it while the
        object lasts); for a keep the commit holds the whole tree anyway, and the note says which.
        """
        if len(patch) <= PATCH_FILE_LIMIT // 4:  # even at 4 bytes a character, within every limit
            return patch
        starts = [m.start() for m in _SECTION.finditer(patch)] or [0]
        ends = [*starts[1:], len(patch)]
        head, sections = patch[: starts[0]], [patch[a:b] for a, b in zip(starts, ends, strict=True)]
        kept: list[str] = []
        listed: list[str] = []
        total = len(head)
        for section in sections:
            size = len(section.encode("utf-8", "surrogateescape"))
            if size <= PATCH_FILE_LIMIT and total + size <= PATCH_LIMIT:
                kept.append(section)
                total += size
            else:
                listed.append(self._listing(section))
        if not listed:
            return patch
        note = [f"# arl-bot: this patch is shortened to fit the record: a file's diff over {PATCH_FILE_LIMIT:,} "
                f"bytes, or past {PATCH_LIMIT:,} bytes in all, is listed instead of stored.",
                "# listed (file, size of the new version, blob):"]
        note += [f"#   {line}" for line in listed]
        if commit:
            note.append(f"# the whole change is commit {commit}: `git show --binary {commit}`")
        return "\n".join(note) + "\n" + head + "".join(kept)

    def _listing(self, section: str) -> str:
        """One line naming a file left out of a patch: its header, its new size and blob."""
        title = section.split("\n", 1)[0].removeprefix("diff --git ")
        binary = "GIT binary patch" in section or "Binary files " in section
        found = _INDEX.search(section)
        blob = found.group(1) if found else ""
        if not blob or not blob.strip("0"):
            return f"{title}  (deleted; diff of {len(section):,} bytes)"
        try:
            size = f"{int(self.git.run('cat-file', '-s', blob)):,} bytes"
        except (GitError, ValueError):
            size = "size unknown"
        return f"{title}  {size}  blob {blob}{'  (binary)' if binary else ''}"

    def append_note(self, note: Note, number: int) -> None:
        """Add a note; number orders notes and must be unique."""
        head = self.head()
        # A note pushed from elsewhere (a `stop` from the gate) may hold the number this writer expects
        # next; take the next free one rather than overwrite it (notes are ordered by time anyway).
        while head is not None and self._has(head, _shard_path("notes", number, ".json")):
            number += 1
        self._write({_shard_path("notes", number, ".json"): note.to_json().encode()},
                    f"{note.kind}")
        self._keep_reserve()  # a run starts with a note: set the reserve aside before its first attempt

    def _has(self, commit: str, path: str) -> bool:
        try:
            self.git.run("cat-file", "-e", f"{commit}:{path}")
        except GitError:
            return False
        return True

    def _write(self, files: dict[str, bytes], message: str, new: bool = False) -> None:
        """Commit files onto the record; a full disk (ENOSPC, EDQUOT) is a DiskFullError, not a traceback."""
        try:
            self._commit(files, message, new)
        except OSError as exc:
            self._indexed_commit = None
            full = self._disk_full(exc)
            if full is None:
                raise
            raise full from None
        except GitError:
            full = self._disk_full()
            if full is None:
                raise
            raise full from None

    def _commit(self, files: dict[str, bytes], message: str, new: bool = False) -> None:
        """Commit files onto the record in-process; only the final compare-and-swap runs git.

        The trees along each path are rebuilt from a cache of the record's latest commit, so an
        append writes one shard tree (at most SHARD entries), its folder, the root and a commit:
        the same work at attempt 10 and at attempt 10,000.
        """
        parent = self.head()
        if new and parent is not None:
            raise RecordError("a record already exists", where=self.ref)
        if parent != self._indexed_commit:
            self._trees = {}
        root = self._tree("", parent)
        for path, data in files.items():
            parts = path.split("/")
            blob = (BLOB_MODE, self.git.objects.store_blob(data))
            trees = [root] + [self._tree("/".join(parts[: i + 1]), parent) for i in range(len(parts) - 1)]
            trees[-1][parts[-1]] = blob
            for depth in range(len(parts) - 1, 0, -1):
                trees[depth - 1][parts[depth - 1]] = (TREE_MODE, self.git.objects.store_tree(trees[depth]))
        commit = self.git.objects.store_commit(self.git.objects.store_tree(root), [parent] if parent else [], message)
        # Compare-and-swap: a second writer that raced us fails here instead of losing our item.
        try:
            self.git.move_ref(self.ref, commit, parent)
        except GitError:
            self._indexed_commit = None
            raise
        self._indexed_commit = commit

    def _tree(self, path: str, commit: str | None) -> dict[str, tuple[str, str]]:
        """The cached entries of one tree of the record (loaded from git the first time)."""
        if path not in self._trees:
            exists = commit is not None and (path == "" or self._tree_has(path))
            self._trees[path] = self.git.list_tree(f"{commit}:{path}") if exists else {}
        return self._trees[path]

    def _tree_has(self, path: str) -> bool:
        parent, _, name = path.rpartition("/")
        entry = self._trees.get(parent, {}).get(name)
        return entry is not None and entry[0] == TREE_MODE

    def reset_index(self) -> None:
        """Forget the cached trees (after the ref moved under us, e.g. by a fetch or a repair)."""
        self._indexed_commit = None
        self._trees = {}
        Path(self._index).unlink(missing_ok=True)

