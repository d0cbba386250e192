"""Keep the research branch and the record level with the remote; every push is atomic, none forced."""

from __future__ import annotations

from .errors import ArlError, PushRejectedError, RecordError
from .git import Git
from .store import record_ref


class Remote:
    """The remote a loop pushes to (`origin` unless told otherwise)."""

    def __init__(self, repo: Git, name: str, loop: str) -> None:
        self.repo = repo
        self.name = name
        self.branch_ref = f"refs/heads/autoresearch/{loop}"
        self.record_ref = record_ref(loop)
        # Not under refs/remotes/<name>/autoresearch/<loop>: that is a file there (the branch), not a folder.
        self.tracking_branch = f"refs/autoresearch-remote/{name}/{loop}/branch"
        self.tracking_record = f"refs/autoresearch-remote/{name}/{loop}/record"

    def pull(self) -> None:
        """Fetch branch and record; fast-forward ours, or say why we cannot."""
        if not self.repo.has_remote(self.name):
            raise ArlError(
                f"there is no remote named {self.name!r} to push results to",
                hint="add one with `git remote add origin URL`, or run with --dry-run to keep it local",
            )
        self.repo.fetch(self.name, [f"+{self.branch_ref}:{self.tracking_branch}",
                                    f"+{self.record_ref}:{self.tracking_record}"])
        self._fast_forward(self.record_ref, self.tracking_record, "record")
        self._fast_forward(self.branch_ref, self.tracking_branch, "research branch")

    def _fast_forward(self, ours: str, theirs: str, what: str) -> None:
        local, remote = self.repo.rev(ours), self.repo.rev(theirs)
        if remote is None or local == remote:
            return
        if local is None or self.repo.is_ancestor(local, remote):
            self.repo.move_ref(ours, remote, local)
        elif not self.repo.is_ancestor(remote, local):
            raise RecordError(
                f"the {what} here and on {self.name} have diverged", where=ours,
                hint=f"another clone ran this loop; compare `git log {ours}` with `git log {theirs}`",
            )

    def push(self) -> bool:
        """Push branch and record in one atomic push: both land or neither does.

        A rejected push fetches, re-checks and retries once: notes pushed meanwhile (a `stop` or
        `redirect` from a comment) are taken in under ours, and commits someone pushed to the research
        branch (a manual fix) are merged with ours, keeping both. Returns whether the branch took in
        commits from elsewhere: the loop must then measure its new head before going on.
        """
        refs = [f"{ref}:{ref}" for ref in (self.branch_ref, self.record_ref) if self.repo.rev(ref)]
        moved = False
        try:
            self.repo.push(self.name, refs)
        except PushRejectedError as exc:
            moved = self._take_in_branch()
            problem = self._catch_up()
            if problem is not None:
                raise ArlError(
                    f"{self.name} refused the push of the research branch and record ({exc.stderr.strip()[:200]}), "
                    f"and after fetching: {problem}",
                    hint="nothing kept is lost (it is in this clone's branch and record); find out who else "
                    f"runs this loop, then compare `git log {self.branch_ref}` with `git log {self.tracking_branch}`",
                ) from None
            try:
                self.repo.push(self.name, refs)
            except PushRejectedError as again:
                raise ArlError(
                    f"{self.name} refused the push of the research branch and record twice: {again.stderr}",
                    hint="someone else is pushing to the research branch right now; run again to sync, nothing "
                    "kept is lost (it is in this clone's branch and record)",
                ) from None
        for ours, tracking in ((self.branch_ref, self.tracking_branch),
                               (self.record_ref, self.tracking_record)):
            sha = self.repo.rev(ours)
            if sha:
                self.repo.run("update-ref", tracking, sha)
        return moved

    def _take_in_branch(self) -> bool:
        """Fetch; when the research branch moved there, fast-forward or merge ours onto it (never force)."""
        self.repo.fetch(self.name, [f"+{self.branch_ref}:{self.tracking_branch}"])
        ours, theirs = self.repo.rev(self.branch_ref), self.repo.rev(self.tracking_branch)
        if ours is None or theirs is None or self.repo.is_ancestor(theirs, ours):
            return False
        if self.repo.is_ancestor(ours, theirs):
            self.repo.move_ref(self.branch_ref, theirs, ours)
            return True
        tree = self.repo.merge_trees(ours, theirs)
        if tree is None:
            side = f"refs/autoresearch/{self.branch_ref.rsplit('/', 1)[1]}/unmerged/{ours[:12]}"
            self.repo.push(self.name, [f"{ours}:{side}", f"{self.record_ref}:{self.record_ref}"])
            raise ArlError(
                f"someone pushed commits to {self.branch_ref} on {self.name} that conflict with this run's "
                f"kept experiments; nothing is lost: they are pushed to {side} and in the record",
                hint=f"merge {side} into the research branch by hand, push it, then run again",
            )
        merged = self.repo.store_commit(tree, [ours, theirs], f"Merge {self.name}'s changes to the research "
                                        "branch with this run's kept experiments")
        self.repo.move_ref(self.branch_ref, merged, ours)
        return True

    def _catch_up(self) -> str | None:
        """Fetch, and put our record's new commits on top of notes others pushed; None when a retry may work."""
        self.repo.fetch(self.name, [f"+{self.branch_ref}:{self.tracking_branch}",
                                    f"+{self.record_ref}:{self.tracking_record}"])
        ours, theirs = self.repo.rev(self.branch_ref), self.repo.rev(self.tracking_branch)
        if theirs is not None and ours is not None and not self.repo.is_ancestor(theirs, ours):
            return f"{self.branch_ref} has commits on {self.name} that this run does not have"
        local, remote = self.repo.rev(self.record_ref), self.repo.rev(self.tracking_record)
        if remote is None or local is None or self.repo.is_ancestor(remote, local):
            return None
        base = self.repo.run("merge-base", local, remote)
        added = self.repo.run("diff", "--name-only", "--no-renames", base, remote).split()
        if any(not path.startswith("notes/") for path in added):
            return "the record there has attempts this run does not have (another runner ran this loop)"
        mine = self.repo.run("diff", "--name-only", "--no-renames", base, local).split()
        if set(mine) & set(added):
            return "the record there has notes numbered like ours"
        merged = self._rebase_record(base, local, remote, mine)
        self.repo.move_ref(self.record_ref, merged, local)
        return None

    def _rebase_record(self, base: str, local: str, remote: str, paths: list[str]) -> str:
        """A commit on top of remote with the files our commits since base added (no worktree, no force)."""
        import os
        import tempfile

        from .git import identity_env

        with tempfile.TemporaryDirectory(prefix="arl-record-") as scratch:
            env = {**os.environ, "GIT_INDEX_FILE": os.path.join(scratch, "index")}
            self.repo.run("read-tree", remote, env=env)
            entries = dict(self.repo.tree_entries(local))
            cacheinfo: list[str] = []
            for path in paths:
                cacheinfo += ["--cacheinfo", f"100644,{entries[path]},{path}"]
            if cacheinfo:
                self.repo.run("update-index", "--add", *cacheinfo, env=env)
            tree = self.repo.run("write-tree", env=env)
        count = self.repo.run("rev-list", "--count", f"{base}..{local}")
        return self.repo.run("commit-tree", tree, "-p", remote, "-m",
                             f"{count} record entries on top of notes pushed meanwhile", env=identity_env())
