"""The gate's I/O: the facts its pure decision reads, the effects it returns, and the adapter that performs them.

The decision (`gate.decision`) is a function of the event, the config and a `Facts`; it returns a `Decision`
(the Order plus the effects, in order). `LiveFacts` answers over the GitHub client and the loop's record, each
question only when the decision asks it; `perform` carries the effects out. Tests give the decision a plain
dataclass of facts and read the effects it returns.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from ..record import Record
from . import feedback, notes
from .client import GitHubError
from .context import Context
from .outputs import Order, annotate

NoteKind = Literal["pause", "resume", "redirect"]


@dataclass(frozen=True)
class React:
    """A reaction on the comment that asked (👀 on receipt)."""

    comment_id: int
    content: str


@dataclass(frozen=True)
class Reply:
    """A comment on the pull request or issue."""

    number: int
    text: str


@dataclass(frozen=True)
class QueuedReply:
    """The reply the research job edits as it goes; its id becomes the Order's `reply` (failing to post it warns)."""

    number: int
    text: str


@dataclass(frozen=True)
class AddNote:
    """A note appended to the loop's record and pushed (stop, continue of a stopped loop, redirect)."""

    loop: str
    kind: NoteKind
    data: dict[str, str] = field(hash=False)


@dataclass(frozen=True)
class Say:
    """A line for the job's log (stderr); secrets are redacted when it is written."""

    text: str


Effect = React | Reply | QueuedReply | AddNote | Say


@dataclass(frozen=True)
class Decision:
    """What the gate decided: the Order for the research job and the effects to perform first, in order."""

    order: Order
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class Head:
    """Where a pull request's branch lives."""

    repo: str  # owner/name ('' when the head repository was deleted)
    ref: str


class Facts(Protocol):
    """The read-only questions the gate asks about GitHub and the loops' records."""

    def role(self, login: str) -> str:
        """login's role on this repository (admin, maintain, write, triage, read or none)."""
        ...

    def refused_before(self, number: int, login: str) -> bool:
        """Whether the bot already refused login on thread number."""
        ...

    def head(self, number: int) -> Head:
        """Where pull request number's branch lives."""
        ...

    def open_pulls(self) -> list[Head]:
        """The heads of every open pull request."""
        ...

    def record(self, loop: str) -> Record | None:
        """The loop's record (None: it never ran); raises ArlError when it cannot be read."""
        ...


class LiveFacts:
    """Facts from the GitHub client and the record's ref; each asked only when the decision needs it, once."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._records: dict[str, Record | None] = {}

    def role(self, login: str) -> str:
        """One request."""
        return self.ctx.gh.role(login)

    def refused_before(self, number: int, login: str) -> bool:
        """Only the bot's own comments count (they are Bots): a person cannot forge a refusal to silence it."""
        marker = feedback.refused_marker(login).strip()
        return any(c.user_type == "Bot" and marker in c.body for c in self.ctx.gh.comments(number))

    def head(self, number: int) -> Head:
        """One request."""
        pull = self.ctx.gh.pull(number)
        return Head(pull.head_repo, pull.head_ref)

    def open_pulls(self) -> list[Head]:
        """One request per page of open pull requests."""
        return [Head(p.head_repo, p.head_ref) for p in self.ctx.gh.pulls(state="open")]

    def record(self, loop: str) -> Record | None:
        """Fetched from the remote (none in a dry run), then read from the record's ref."""
        if loop not in self._records:
            self._records[loop] = notes.load(self.ctx.repo, loop, self.ctx.sync_remote)
        return self._records[loop]


def perform(ctx: Context, decision: Decision) -> Order:
    """Carry out the decision's effects in order and return its Order (with the queued reply's id).

    An effect that fails raises and stops the rest (a note that could not be pushed is not confirmed by a
    reply), except a reaction and the queued reply: the run matters more than either.
    """
    order = decision.order
    for effect in decision.effects:
        match effect:
            case React(comment_id, content):
                try:
                    ctx.gh.react(comment_id, content)
                except GitHubError as exc:
                    annotate("warning", f"could not react to comment {comment_id}: {ctx.redact(exc.message)}")
            case Reply(number, text):
                ctx.gh.comment(number, text)
            case QueuedReply(number, text):
                try:
                    order = replace(order, reply=ctx.gh.comment(number, text))
                except GitHubError as exc:
                    print(f"arl-bot: could not post the queued reply: {ctx.redact(exc.message)}", file=sys.stderr)
            case AddNote(loop, kind, data):
                notes.add(ctx.repo, loop, kind, dict(data), ctx.sync_remote)
            case Say(text):
                print(f"arl-bot: {ctx.redact(text)}", file=sys.stderr)
    return order
