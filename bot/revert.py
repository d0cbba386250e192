"""Undo a kept experiment: a revert commit on the research branch, measured and recorded like any keep."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from .errors import ArlError, GitError
from .git import Git

if TYPE_CHECKING:
    from .loop import RunSummary, Session


class RevertError(ArlError):
    """The experiment cannot be reverted; nothing was changed."""


def revert(session: Session, experiment: int, by: str = "") -> RunSummary:
    """Revert a kept experiment on the loop's branch, re-measure, and record it (a conflict changes nothing)."""

    def make(tree: Git, head: str) -> str:
        assert session.record is not None
        attempt = session.record.attempt(experiment)
        if attempt is None:
            raise RevertError(f"there is no experiment {experiment} in loop {session.loop.name!r}",
                              hint=f"`arl-bot results --loop {session.loop.name}` lists them")
        if attempt.status != "keep" or not attempt.sha:
            raise RevertError(f"experiment {experiment} was not kept ({attempt.status}), so there is nothing "
                              "on the branch to revert", hint="only kept experiments can be reverted")
        if not session.repo.is_ancestor(attempt.sha, head):
            raise RevertError(f"experiment {experiment}'s commit {attempt.sha[:8]} is not on "
                              f"{session.loop.branch} any more", hint="was the branch rewritten?")
        if any(a.extra.get("reverts") == experiment for a in session.record.attempts if a.status == "keep"):
            raise RevertError(f"experiment {experiment} was already reverted",
                              hint="revert the revert's experiment number to bring it back")
        try:
            tree.run("revert", "--no-commit", "--no-edit", attempt.sha)
        except GitError as exc:
            _abandon(tree, head)
            conflicted = "conflict" in exc.stderr.lower()
            raise RevertError(
                f"reverting experiment {experiment} ({attempt.sha[:8]}) "
                + ("conflicts with later experiments" if conflicted else f"failed: {exc.stderr[:300]}")
                + "; nothing was changed",
                hint="revert the later experiments that touch the same lines first, or edit the branch by hand",
            ) from None
        if not tree.staged_changes(head):
            _abandon(tree, head)
            raise RevertError(f"reverting experiment {experiment} changes nothing (later experiments undid it)")
        who = f" (asked by @{by})" if by else ""
        return f"Revert experiment {experiment}: {attempt.description}{who}"

    return session.adopt(make, mode="revert", reason=f"reverts experiment {experiment}",
                         trailers={"Reverts": str(experiment)}, extra={"reverts": experiment, "by": by})


def _abandon(tree: Git, head: str) -> None:
    with contextlib.suppress(GitError):  # no revert in progress (it failed before starting): the reset is enough
        tree.run("revert", "--abort")
    tree.reset_hard(head)
