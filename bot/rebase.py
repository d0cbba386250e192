"""Bring the base branch into the research branch: merge it, adopt it as the loop's base, re-measure, record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import names
from .errors import ArlError, GitError
from .git import Git

if TYPE_CHECKING:
    from .loop import RunSummary, Session


class RebaseError(ArlError):
    """The base cannot be brought in; nothing was changed."""


def tip(repo: Git, branch: str, remote: str) -> str | None:
    """The newest commit of the base branch here: the local branch, or the remote's when it is ahead of it."""
    local = repo.rev(f"refs/heads/{branch}")
    tracking = repo.rev(f"refs/remotes/{remote}/{branch}")
    if local is None or (tracking is not None and tracking != local and repo.is_ancestor(local, tracking)):
        return tracking  # a CI checkout's local branch can lag the remote's; a user's own unpushed work wins
    return local


def behind(repo: Git, branch: str, head: str, remote: str) -> int:
    """How many commits of the base branch the research branch (at head) does not have."""
    newest = tip(repo, branch, remote)
    if newest is None:
        return 0
    try:
        return int(repo.run("rev-list", "--count", f"{head}..{newest}"))
    except (GitError, ValueError):
        return 0


def rebase(session: Session, by: str = "") -> RunSummary | None:
    """Merge the base branch into the loop's branch, make it the base, re-measure and record it.

    Returns None when there is nothing to bring in. A merge that conflicts, or a merged tree that does
    not evaluate, changes neither the branch nor the base (the failed measurement is recorded).
    """
    loop = session.loop
    if session.remote is not None:
        session.remote.pull()  # the record names the base branch; a fresh clone has it only on the remote
    record = session.store.load()
    if record is None:
        raise RebaseError(f"loop {loop.name!r} has not run yet, so there is no research branch to rebase",
                          hint=f"start it with `arl-bot run --loop {loop.name}`; it starts from the newest base")
    branch = record.meta.base_branch
    new_base = tip(session.repo, branch, session.options.remote)
    if new_base is None:
        raise RebaseError(f"the base branch {branch!r} is not in this repository",
                          hint=f"fetch it (`git fetch {session.options.remote} {branch}`), then run again")
    head = session.repo.rev(names.branch_ref(loop.name))
    if head is not None and new_base == record.meta.base_sha and session.repo.is_ancestor(new_base, head):
        return None
    count = behind(session.repo, branch, head, session.options.remote) if head else 0
    who = f" (asked by @{by})" if by else ""

    def make(tree: Git, head: str) -> str:
        if session.repo.is_ancestor(new_base, head):  # merged by hand: adopt it as it is
            return f"Adopt {branch} at {new_base[:8]} as the base of {loop.branch} (merged already){who}"
        merged = session.repo.merge_trees(head, new_base)
        if merged is None:
            raise RebaseError(
                f"merging {branch} ({new_base[:8]}) into {loop.branch} conflicts; nothing was changed",
                hint=f"merge it by hand: `git checkout {loop.branch} && git merge {branch}`, resolve and commit, "
                f"`git checkout -`; then `arl-bot rebase --loop {loop.name}` makes it the base")
        tree.checkout_tree(merged)  # index and files: what adopt measures and commits
        plural = "s" if count != 1 else ""
        return f"Merge {branch} ({count} new commit{plural}, {new_base[:8]}) into {loop.branch}: the new base{who}"

    summary = session.adopt(make, mode="rebase", reason=f"{branch} at {new_base[:8]} is the new base",
                            trailers={"Base": new_base},
                            extra={"rebase": {"from": record.meta.base_sha, "to": new_base, "branch": branch,
                                              "commits": count, "by": by}},
                            base=new_base)
    last = summary.attempts[-1] if summary.attempts else None
    if last is not None and last.status == "crash":
        raise RebaseError(
            f"with {branch} merged ({new_base[:8]}), the evaluation fails: {last.reason}; nothing was changed "
            f"(the failed measurement is experiment {last.experiment} in the record)",
            hint=f"fix it on {branch} (`arl-bot eval` in your checkout shows the evaluation's output), "
            "then rebase again")
    return summary
