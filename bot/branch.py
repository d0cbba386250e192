"""The research branch: its head (moved only by compare-and-swap), the worktrees experiments run in, and a keep.

Every worktree's HEAD is detached: a commit or reset there never moves the branch; only `move` does, and
only from the head the caller saw, so two workers (or two runners) can never lose each other's keeps.
"""

from __future__ import annotations

import threading
from pathlib import Path

from . import names
from .config import Loop
from .git import Git
from .globs import matches_any

WORKTREES = ".arl-bot/worktrees"  # inside the checkout, hidden from `git status` by .git/info/exclude
WORKER_TREES = ".arl-bot/workers"  # worker k > 0 of a loop: <WORKER_TREES>/<loop>/<k>


class ResearchBranch:
    """The loop's branch `autoresearch/<loop>` and what may change it."""

    def __init__(self, repo: Git, loop: Loop) -> None:
        self.repo = repo
        self.loop = loop
        self.ref = names.branch_ref(loop.name)
        self.drifted: list[str] = []  # protected paths the branch changed outside the loop
        self._head: str | None = None  # cached: only this process moves the branch while it holds the lock
        self._lock = threading.Lock()

    # -- the head ----------------------------------------------------------------------------------
    def head(self) -> str:
        """The branch's commit (cached; `forget` after something else may have moved it)."""
        with self._lock:
            if self._head is None:
                self._head = self.repo.rev(self.ref)
            assert self._head is not None, f"{self.ref} does not exist"
            return self._head

    def forget(self) -> None:
        """Read the head from git next time (a push took in commits from elsewhere)."""
        with self._lock:
            self._head = None

    def move(self, new: str, old: str) -> None:
        """Move the branch from old to new; git refuses (GitError) when it is not at old any more."""
        with self._lock:
            self.repo.move_ref(self.ref, new, old)
            self._head = new

    # -- protected paths ---------------------------------------------------------------------------
    def measure_drift(self, base_sha: str, head: str | None = None) -> list[str]:
        """Find the protected paths the branch changed outside the loop (the evaluation still uses the base's)."""
        changed = self.repo.changed_between(base_sha, head or self.head())
        self.drifted = [p for p in changed if matches_any(p, self.loop.all_protected)]
        return self.drifted

    def restore_protected(self, tree: Git, base_sha: str) -> None:
        """Make every protected path the base's, so the evaluation code is always the base's.

        Agents cannot change protected paths (the diff check refuses it), so only commits made on
        the research branch by other means can: those are found once per run, by `measure_drift`.
        """
        if self.drifted:
            tree.restore_paths(base_sha, self.drifted)

    # -- worktrees and keeps -----------------------------------------------------------------------
    def worktree_path(self, worker: int) -> Path:
        """Where worker's worktree lives: worker 0 where a single-worker loop always had it."""
        if worker == 0:
            return self.repo.root / WORKTREES / self.loop.name
        return self.repo.root / WORKER_TREES / self.loop.name / str(worker)

    def worktree(self, worker: int) -> Git:
        """Worker's worktree, detached at the head: reused, repaired or made anew."""
        return self.repo.research_worktree(self.worktree_path(worker), self.head())

    def keep_tree(self, tree: Git, parent: str) -> str:
        """The tree a keep commits: the head's, with the editable paths as they were evaluated.

        Protected paths were made the base's for the evaluation; committing them would revert what a
        person brought into the branch (a merge of the base branch: a new evaluation file, the config).
        """
        stray = [c.path for c in tree.staged_changes(parent)
                 if not matches_any(c.path, self.loop.editable) or matches_any(c.path, self.loop.all_protected)]
        if stray:
            tree.restore_paths(parent, stray)
        return tree.write_tree()

    def onto(self, tree: Git, candidate_tree: str, parent: str, head: str) -> str | None:
        """candidate_tree (a change made on parent) applied onto head, in tree's files: its tree, or None.

        A worker measured its change against the best it started from; another worker kept something
        since. The change is replayed by a three-way merge (base parent, ours the candidate, theirs the
        head): None when the two touch the same lines, and then nothing in tree changed.
        """
        ours = tree.objects.store_commit(candidate_tree, [parent], "candidate")
        merged = self.repo.merge_trees(ours, head)
        if merged is None:
            return None
        tree.reset_hard(head)
        tree.checkout_tree(merged)  # files and index only: HEAD stays at the head the keep is committed on
        return merged
