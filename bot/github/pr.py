"""The research pull request: opened once per loop as a draft, found again by branch, body rebuilt from the record."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import replace

from .. import names
from ..config import Loop
from ..errors import ArlError, PushRejectedError
from ..git import Git
from ..prbody import BodyContext, merge, own, render
from ..record import Attempt, Record
from ..runview import Listener, RunView
from ..store import RecordStore
from ..sync import Remote
from .client import GitHub, GitHubError, Pull

START_MESSAGE = "autoresearch: start loop {loop}"
STARTING_BODY = ("## 🔬 autoresearch: `{loop}`\n\nStarting: the baseline is being measured. This body is rebuilt from "
                 "the loop's record after every experiment.\n")
# GitHub's words (403 on POST /pulls) when the repository or organisation setting is off, as it is by default
# for new repositories in personal accounts.
NOT_PERMITTED = "not permitted to create or approve pull requests"
SETTING = ('Settings → Actions → General → Workflow permissions → "Allow GitHub Actions to create and approve '
           'pull requests"')
# GitHub's words (422) for a private repository on GitHub Free or Pro, which has no draft pull requests.
NO_DRAFTS = "draft pull requests are not supported"
NO_DRAFTS_NOTICE = ("Opened as a normal pull request, not a draft: this repository does not support draft pull "
                    "requests (private repositories on GitHub Free and Pro). Set `github: {draft: false}` in "
                    "the config to open it this way without trying.")


class PullRequestRefused(ArlError):
    """GitHub will not let this token open the research pull request; no experiment should run before it can."""


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
    branch_ref = names.branch_ref(loop.name)
    if RecordStore(repo, loop.name).head() is not None or repo.rev(branch_ref) is not None:
        return False
    base = loop.base or repo.current_branch()
    base_sha = repo.rev(base) if base else None
    if base_sha is None:
        return False  # the run explains a detached HEAD or an empty base better than we could here
    tree = repo.run("rev-parse", f"{base_sha}^{{tree}}")
    sha = repo.commit_tree(tree, base_sha, START_MESSAGE.format(loop=loop.name), {"Loop": loop.name})
    repo.move_ref(branch_ref, sha, None)
    try:
        repo.push(remote, [f"{branch_ref}:{branch_ref}"])
    except PushRejectedError:
        # Another of the loop's research jobs (`runners:`) seeded it first: take theirs, drop ours.
        repo.run("update-ref", "-d", branch_ref, sha)
        sync.pull()
        return False
    return True


FLUSH_S = 180.0  # how long the end of a run waits for the last body update to get through
CATCH_UP_ROUNDS = 4  # reads of the remote's record and the body at a job's end, each with at most one update
# Inside the bot's part of the body: how much of the record it shows. Attempts and notes are only ever appended,
# so a larger count is a later record; a loop's `runners:` jobs read it at their end (PullRequestView.catch_up).
SHOWS = "<!-- arl-bot:pr-body-shows {size} -->"
SHOWS_RE = re.compile(r"<!-- arl-bot:pr-body-shows (\d{1,9}) -->")


def size(record: Record) -> int:
    """How much of the loop's history a record holds: it only grows."""
    return len(record.attempts) + len(record.notes)


def shown(body: str) -> int:
    """How much of the record a body shows (-1: a body without the count, e.g. an older bot's)."""
    found = SHOWS_RE.search(body)
    return int(found.group(1)) if found else -1


class PullRequestView(Listener):
    """A run listener that keeps the loop's pull request level with the record.

    Requests: one to find the pull request (or open it) at the start, then at most one body update per
    experiment and one at the end; none of them grows with the history. Updates are posted by a
    background thread, newest body only, so a slow or failing GitHub never holds up the experiments
    (retries with backoff can take a minute). A failed update only warns: the record is the truth and
    the next update (or the next run) rebuilds the whole body.
    """

    def __init__(self, github: GitHub, loop: Loop, ctx: BodyContext, *, number: int | None = None,
                 base: str | None = None, draft: bool = True) -> None:
        self.github = github
        self.loop = loop
        self.number = number
        self.base = base
        self.draft = draft
        self.pull: Pull | None = None
        self.ctx = ctx  # built by start.Started.body_context, as a dry run's body is
        self.errors: list[GitHubError] = []
        self._posted: str | None = None
        self._turn = threading.Condition()
        self._next: str | None = None  # the newest body not yet posted
        self._busy = False
        self._poster: threading.Thread | None = None
        self._run: RunView | None = None

    def find(self) -> Pull | None:
        """The open pull request from the loop's branch, if there is one."""
        found = self.github.pulls(head_ref=self.loop.branch, state="open")
        return found[0] if found else None

    def prepare(self, repo: Git, record: Record | None) -> None:
        """Find or open the pull request before the first experiment (the branch must be on GitHub).

        Opening it first means a person can steer the run from its first minute, and a token that may not
        open pull requests fails the job now rather than after hours of experiments. A refusal raises
        PullRequestRefused; other failures only warn, as every later update does.
        """
        try:
            if self.number is None:
                self.pull = self.find()
                self.number = self.pull.number if self.pull else None
            elif self.draft:  # the body may say why it is not a draft: read it once, so rebuilds keep saying so
                self.pull = self.github.pull(self.number)
            if self.pull is not None and NO_DRAFTS_NOTICE in self.pull.body:
                self.ctx = replace(self.ctx, notice=NO_DRAFTS_NOTICE)  # opened so by an earlier run: keep saying why
            if self.number is not None:
                return
            base = self.base or (record.meta.base_branch if record is not None else self.loop.base
                                 or repo.current_branch())
            if not base:
                return  # a detached HEAD: the run says what to do better than we could here
            self.base = base
            self._create(base, record)
        except GitHubError as exc:
            if exc.status == 403 and NOT_PERMITTED in exc.message.lower():
                raise PullRequestRefused(
                    f"GitHub refused to open the research pull request for {self.loop.name}: {exc.message}",
                    hint=f"a repository admin must turn on {SETTING} (or the same setting of the organisation, "
                         "which overrides it); no experiment was run") from None
            self.errors.append(exc)

    def on_start(self, run: RunView) -> None:
        """Find or open the pull request and show the run as started."""
        assert run.record is not None
        body = self._render(run.record)
        try:
            if self.number is None:
                self.pull = self.find()
                self.number = self.pull.number if self.pull else None
            if self.number is None:
                if not run.pushed():
                    return  # the branch is not on GitHub yet; the first recorded attempt pushes it
                self._open(run)
            else:
                self._post_later(run, body)
        except GitHubError as exc:
            self._failed(run, exc)

    def on_phase(self, run: RunView, experiment: int, phase: str) -> None:
        """Phases are not worth a request each; the body changes when an attempt is recorded."""

    def on_attempt(self, run: RunView, attempt: Attempt) -> None:
        """Rebuild the body after each recorded attempt (one request)."""
        self._refresh(run)

    def on_end(self, run: RunView, reason: str) -> None:
        """Show why the run stopped, and wait (a while) until GitHub has it."""
        self._refresh(run)
        self.flush(FLUSH_S)

    def flush(self, timeout: float) -> bool:
        """Wait until every body handed to the poster has been posted or has failed."""
        with self._turn:
            return self._turn.wait_for(lambda: self._next is None and not self._busy, timeout)

    def _refresh(self, run: RunView) -> None:
        assert run.record is not None
        body = self._render(run.record)  # here, on the loop's thread: the record is not thread-safe
        if self.number is not None:
            self._post_later(run, body)
            return
        try:
            self._open(run)
        except GitHubError as exc:
            self._failed(run, exc)

    def _post_later(self, run: RunView, body: str) -> None:
        with self._turn:
            self._next, self._run = body, run
            if self._poster is None:
                self._poster = threading.Thread(target=self._post_forever, name="arl-pr-body", daemon=True)
                self._poster.start()
            self._turn.notify_all()

    def _post_forever(self) -> None:
        while True:
            with self._turn:
                self._turn.wait_for(lambda: self._next is not None)
                body, self._next, self._busy = self._next, None, True
                run = self._run
            try:
                assert body is not None
                self._update(body)
            except GitHubError as exc:
                if run is not None:
                    self._failed(run, exc)
            finally:
                with self._turn:
                    self._busy = False
                    self._turn.notify_all()

    def shows(self, record: Record) -> bool:
        """Whether the pull request's body, as last posted, shows this record."""
        return self._posted == self._render(record)

    def catch_up(self, load: Callable[[], Record | None]) -> bool:
        """After the run, until GitHub's body shows at least the record the remote has (load fetches it), post it.

        A loop's `runners:` jobs each post the body from the record as they know it, and GitHub has no
        compare-and-swap on a body: a job that ended first, or whose update was slow, can post last and take
        the body back to an older record. Each job ends with this, after its last push: whichever job ends
        last leaves the body showing every job's attempts. Returns whether the body was seen to show it.
        """
        if self.number is None:
            return False
        for _ in range(CATCH_UP_ROUNDS):
            record = load()
            if record is None:
                return False
            try:
                current = self.github.pull(self.number).body
                if shown(current) >= size(record):
                    return True
                body = self._render(record)
                self.github.set_pull_body(self.number, merge(current, body))
            except GitHubError as exc:
                self.errors.append(exc)
                return False
            self._posted = body
        return False

    def _render(self, record: Record) -> str:
        """The bot's part of the body, with how much of the record it shows after the first marker line."""
        body = render(record, self.ctx)
        first, _, rest = body.partition("\n")
        return f"{first}\n{SHOWS.format(size=size(record))}\n{rest}"

    def _open(self, run: RunView) -> None:
        assert run.record is not None
        base = self.base or run.record.meta.base_branch
        self._create(base, run.record)

    def _create(self, base: str, record: Record | None) -> None:
        try:
            self._post_new(base, record, self.draft)
        except GitHubError as exc:
            if not (self.draft and exc.status == 422 and NO_DRAFTS in exc.message.lower()):
                raise
            # Open the normal pull request GitHub allows, and say why in the body (every rebuild keeps it).
            self.ctx = replace(self.ctx, notice=NO_DRAFTS_NOTICE)
            self._post_new(base, record, False)

    def _post_new(self, base: str, record: Record | None, draft: bool) -> None:
        if record is not None:
            body = self._render(record)
        else:
            body = STARTING_BODY.format(loop=self.loop.name)
            if self.ctx.notice:
                body += f"\n> [!NOTE]\n> {self.ctx.notice}\n"
            body = own(body, self.loop.name)  # between the markers: the first real body replaces it, nothing else
        self.pull = self.github.create_pull(head=self.loop.branch, base=base, title=title(self.loop), body=body,
                                            draft=draft)
        self.number = self.pull.number
        self._posted = body

    def _update(self, body: str) -> None:
        if body == self._posted or self.number is None:
            return
        # The bot owns only the text between its markers: read the body first, so what people wrote stays.
        current = self.github.pull(self.number).body
        self.github.set_pull_body(self.number, merge(current, body))
        self._posted = body

    def _failed(self, run: RunView, exc: GitHubError) -> None:
        self.errors.append(exc)
        run.warn(f"could not update the pull request ({exc.message}); the record is safe and the "
                     "next update rebuilds the body")
