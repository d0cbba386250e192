"""The research pull request: opened once per loop as a draft, found again by branch, body rebuilt from the record."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..config import Loop
from ..git import Git
from ..prbody import BodyContext, render
from ..record import Attempt, Record
from ..store import RecordStore
from ..sync import Remote
from .client import GitHub, GitHubError, Pull

if TYPE_CHECKING:
    from ..loop import Session

START_MESSAGE = "autoresearch: start loop {loop}"


def title(loop: Loop) -> str:
    """The pull request's title."""
    return f"autoresearch: {loop.name} ({loop.metric.goal} {loop.metric.name})"


def seed_branch(repo: Git, loop: Loop, remote: str = "origin") -> bool:
    """Give a new loop's branch one empty commit on its base and push it; True when it did.

    GitHub refuses a pull request whose head has no commits beyond its base, and a loop's first keep may
    be hours away: the empty commit lets the pull request open, with the baseline, as the loop starts.
    """
    sync = Remote(repo, remote, loop.name)
    sync.pull()
    branch_ref = f"refs/heads/{loop.branch}"
    if RecordStore(repo, loop.name).head() is not None or repo.rev(branch_ref) is not None:
        return False
    base = loop.base or repo.current_branch()
    base_sha = repo.rev(base) if base else None
    if base_sha is None:
        return False  # the Session explains a detached HEAD or an empty base better than we could here
    tree = repo.run("rev-parse", f"{base_sha}^{{tree}}")
    sha = repo.commit_tree(tree, base_sha, START_MESSAGE.format(loop=loop.name), {"Loop": loop.name})
    repo.move_ref(branch_ref, sha, None)
    repo.push(remote, [f"{branch_ref}:{branch_ref}"])
    return True


FLUSH_S = 180.0  # how long the end of a run waits for the last body update to get through


class PullRequestView:
    """A Session listener that keeps the loop's pull request level with the record.

    Requests: one to find the pull request (or open it) at the start, then at most one body update per
    experiment and one at the end; none of them grows with the history. Updates are posted by a
    background thread, newest body only, so a slow or failing GitHub never holds up the experiments
    (retries with backoff can take a minute). A failed update only warns: the record is the truth and
    the next update (or the next run) rebuilds the whole body.
    """

    def __init__(self, github: GitHub, loop: Loop, *, server_url: str, run_url: str = "",
                 number: int | None = None, base: str | None = None, sandbox_warning: str = "") -> None:
        self.github = github
        self.loop = loop
        self.number = number
        self.base = base
        self.pull: Pull | None = None
        self.ctx = BodyContext(loop=loop.name, goal=loop.metric.goal, metric=loop.metric.name,
                               commit_url=f"{server_url}/{github.full_name}/commit/{{sha}}", run_url=run_url,
                               sandbox_warning=sandbox_warning)
        self.errors: list[GitHubError] = []
        self._posted: str | None = None
        self._turn = threading.Condition()
        self._next: str | None = None  # the newest body not yet posted
        self._busy = False
        self._poster: threading.Thread | None = None
        self._session: Session | None = None

    def find(self) -> Pull | None:
        """The open pull request from the loop's branch, if there is one."""
        found = self.github.pulls(head_ref=self.loop.branch, state="open")
        return found[0] if found else None

    def on_start(self, session: Session) -> None:
        """Find or open the pull request and show the run as started."""
        assert session.record is not None
        body = render(session.record, self.ctx)
        try:
            if self.number is None:
                self.pull = self.find()
                self.number = self.pull.number if self.pull else None
            if self.number is None:
                if session.remote is None or session.repo.rev(session.remote.tracking_branch) is None:
                    return  # the branch is not on GitHub yet; the first recorded attempt pushes it
                self._open(session, body)
            else:
                self._post_later(session, body)
        except GitHubError as exc:
            self._failed(session, exc)

    def on_phase(self, session: Session, experiment: int, phase: str) -> None:
        """Phases are not worth a request each; the body changes when an attempt is recorded."""

    def on_attempt(self, session: Session, attempt: Attempt) -> None:
        """Rebuild the body after each recorded attempt (one request)."""
        self._refresh(session)

    def on_end(self, session: Session, reason: str) -> None:
        """Show why the run stopped, and wait (a while) until GitHub has it."""
        self._refresh(session)
        self.flush(FLUSH_S)

    def flush(self, timeout: float) -> bool:
        """Wait until every body handed to the poster has been posted or has failed."""
        with self._turn:
            return self._turn.wait_for(lambda: self._next is None and not self._busy, timeout)

    def _refresh(self, session: Session) -> None:
        assert session.record is not None
        body = render(session.record, self.ctx)  # here, on the loop's thread: the record is not thread-safe
        if self.number is not None:
            self._post_later(session, body)
            return
        try:
            self._open(session, body)
        except GitHubError as exc:
            self._failed(session, exc)

    def _post_later(self, session: Session, body: str) -> None:
        with self._turn:
            self._next, self._session = body, session
            if self._poster is None:
                self._poster = threading.Thread(target=self._post_forever, name="arl-pr-body", daemon=True)
                self._poster.start()
            self._turn.notify_all()

    def _post_forever(self) -> None:
        while True:
            with self._turn:
                self._turn.wait_for(lambda: self._next is not None)
                body, self._next, self._busy = self._next, None, True
                session = self._session
            try:
                assert body is not None
                self._update(body)
            except GitHubError as exc:
                if session is not None:
                    self._failed(session, exc)
            finally:
                with self._turn:
                    self._busy = False
                    self._turn.notify_all()

    def shows(self, record: Record) -> bool:
        """Whether the pull request's body, as last posted, shows this record."""
        return self._posted == render(record, self.ctx)

    def _open(self, session: Session, body: str) -> None:
        assert session.record is not None
        base = self.base or session.record.meta.base_branch
        self.pull = self.github.create_pull(head=self.loop.branch, base=base, title=title(self.loop), body=body,
                                            draft=True)
        self.number = self.pull.number
        self._posted = body

    def _update(self, body: str) -> None:
        if body == self._posted or self.number is None:
            return
        self.github.set_pull_body(self.number, body)
        self._posted = body

    def _failed(self, session: Session, exc: GitHubError) -> None:
        self.errors.append(exc)
        session.warn(f"could not update the pull request ({exc.message}); the record is safe and the "
                     "next update rebuilds the body")
