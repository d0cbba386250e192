"""Keep the research branch and the record level with the remote; every push is atomic, none forced."""

from __future__ import annotations

import re

from . import names
from .errors import ArlError, PushRejectedError, RecordError
from .git import Git

# What git and GitHub say when a push is refused for a reason a retry cannot fix (matched in git's stderr;
# git runs with LC_ALL=C). Only a non-fast-forward means someone else pushed first.
_TOO_LARGE = re.compile(r"File (.+?) is ([\d.]+ [KMG]B); this exceeds GitHub's file size limit of ([\d.]+ [KMG]B)")
_NO_PERMISSION = ("Permission to", "permission denied", "returned error: 403", "403 Forbidden",
                  "Authentication failed", "could not read Username", "Write access to repository not granted")
_PROTECTED = ("GH006", "protected branch hook declined")
_NON_FAST_FORWARD = ("non-fast-forward", "fetch first", "Updates were rejected because", "stale info",
                     "atomic push failed")


def refusal(remote: str, branch: str, stderr: str) -> ArlError | None:
    """The real cause of a refused push, as an error to raise, or None when it is a race a retry may win."""
    said = "; ".join(line.strip() for line in stderr.splitlines() if line.strip().startswith("remote:"))[:400]
    large = _TOO_LARGE.search(stderr)
    if large or "GH001" in stderr:
        what = (f"{large.group(1)} is {large.group(2)}, over GitHub's limit of {large.group(3)} a file" if large
                else "a file is over GitHub's size limit (GH001)")
        return ArlError(
            f"{remote} refused the push of the research branch and record: {what}",
            hint=f"a file that large can never be pushed to GitHub: a kept experiment on {branch} added it "
            f"(`git log --stat {branch}` finds which). Remove it from the branch, or keep such files out of "
            "the repository (.gitignore) or in Git LFS, then run again; the record itself stores only capped diffs")
    if any(word.lower() in stderr.lower() for word in _NO_PERMISSION):
        return ArlError(
            f"{remote} refused the push: no permission to write to it ({said or stderr.strip()[:200]})",
            hint="the token needs `contents: write` (the workflow's `permissions:`), or the user push access; "
            "nothing kept is lost (it is in this clone's branch and record)")
    if any(word in stderr for word in _PROTECTED):
        return ArlError(
            f"{remote} refused the push: a branch protection rule covers {branch} ({said})",
            hint="exempt `autoresearch/*` from the repository's branch protection (or rulesets), then run again")
    if "pre-receive hook declined" in stderr or ("remote:" in stderr and not any(
            word in stderr for word in _NON_FAST_FORWARD)):
        return ArlError(
            f"{remote} refused the push: its pre-receive hook declined it ({said or stderr.strip()[:200]})",
            hint="the remote's own checks refused it; its words above say why; nothing kept is lost")
    return None


class Remote:
    """The remote a loop pushes to (`origin` unless told otherwise)."""

    def __init__(self, repo: Git, name: str, loop: str) -> None:
        self.repo = repo
        self.name = name
        self.loop = loop
        self.branch_ref = names.branch_ref(loop)
        self.record_ref = names.record_ref(loop)
        self.tracking_branch = names.tracking_ref(name, loop, "branch")
        self.tracking_record = names.tracking_ref(name, loop, "record")

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
            hard = refusal(self.name, self.branch_ref, exc.stderr)
            if hard is not None:
                raise hard from None
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
                hard = refusal(self.name, self.branch_ref, again.stderr)
                if hard is not None:
                    raise hard from None
                raced = any(word in again.stderr for word in _NON_FAST_FORWARD)
                raise ArlError(
                    f"{self.name} refused the push of the research branch and record twice: {again.stderr}",
                    hint=("someone else is pushing to the research branch right now; run again to sync, nothing "
                          "kept is lost (it is in this clone's branch and record)") if raced else
                    "git's words above say why; nothing kept is lost (it is in this clone's branch and record)",
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
            side = names.unmerged_ref(self.loop, ours)
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
            env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}  # Git.run adds it to its own environment
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
