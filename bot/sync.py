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

    def push(self) -> None:
        """Push branch and record in one atomic push: both land or neither does."""
        refs = [f"{ref}:{ref}" for ref in (self.branch_ref, self.record_ref) if self.repo.rev(ref)]
        try:
            self.repo.push(self.name, refs)
        except PushRejectedError as exc:
            raise ArlError(
                f"{self.name} refused the push of the research branch and record: {exc.stderr}",
                hint="someone else pushed to the research branch; run again to sync, nothing kept is lost "
                "(it is in this clone's branch and record)",
            ) from None
        for ours, tracking in ((self.branch_ref, self.tracking_branch),
                               (self.record_ref, self.tracking_record)):
            sha = self.repo.rev(ours)
            if sha:
                self.repo.run("update-ref", tracking, sha)
