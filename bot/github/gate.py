"""The gate: from the event, the config and the facts it asks for, decide what happens; `decide` makes it happen.

`decision` is pure: it reads a `Facts` (read-only questions about GitHub and the records) and returns the
effects to perform (reactions, replies, record notes, log lines) and the Order for the research job.
`decide` is the adapter: it answers the facts live and performs the effects (`effects.perform`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import commands, names
from ..commands import Command, Problem
from ..config import Config
from ..errors import ArlError
from ..events import Event
from ..record import Record
from . import effects, feedback, notes, runreply
from .context import Context
from .effects import AddNote, Decision, Effect, Facts, LiveFacts, QueuedReply, React, Reply, Say
from .feedback import refusal, refused_marker
from .outputs import Order, Target

NOTHING = Order(run=False)
BRANCH_PREFIX = names.BRANCH_PREFIX


def decide(ctx: Context) -> Order:
    """What the event asks for, after every check, with its reactions, replies and record notes done."""
    return effects.perform(ctx, decision(ctx.event, ctx.config, LiveFacts(ctx), actor=ctx.env.get("GITHUB_ACTOR", ""),
                                         dry_run=ctx.dry_run, now=time.time()))


def due_targets(ctx: Context) -> tuple[Target, ...]:
    """The loops the schedule would run now, as the gate picks them (a research job started without a loop)."""
    return effects.perform(ctx, on_schedule(ctx.event, ctx.config, LiveFacts(ctx), time.time())).targets


def decision(event: Event, config: Config, facts: Facts, *, actor: str = "", dry_run: bool = False,
             now: float = 0.0) -> Decision:
    """What the event asks for and what to do about it; actor is GITHUB_ACTOR, now is time.time()."""
    if event.kind == "comment":
        return on_comment(event, config, facts)
    if event.kind == "schedule":
        return on_schedule(event, config, facts, now)
    if event.kind in ("dispatch", "cli"):
        return on_dispatch(event, config, facts, actor=actor, dry_run=dry_run)
    return Decision(NOTHING, (Say(f"nothing to do for a {event.name!r} event"),))


# -- comments --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ask:
    """A well-formed command from an allowed person on a research pull request of this repository."""

    command: Command
    target: Target
    author: str
    number: int
    comment_id: int | None

    def answer(self, text: str) -> Decision:
        """Nothing runs; the person reads text."""
        return Decision(NOTHING, (Reply(self.number, text),))

    def refuse(self, reason: str) -> Decision:
        """Nothing runs; the reply quotes the command and says why."""
        return self.answer(refusal(self.command.line, reason))

    def run(self, command: str, *, experiments: int | None = None, experiment: int | None = None,
            notes_first: tuple[Effect, ...] = ()) -> Decision:
        """The research job runs command on this loop; the queued reply says which runner it waits for."""
        order = Order(run=True, targets=(self.target,), command=command, experiments=experiments,
                      experiment=experiment, pr=self.number, comment_id=self.comment_id)
        jobs = self.target.runners if command in ("run", "continue") else 1  # as Order.outputs starts them
        queued = QueuedReply(self.number, runreply.queued(self.command.line, self.target.loop, self.target.runner,
                                                          jobs))
        return Decision(order, (*notes_first, queued))


def on_comment(ev: Event, config: Config, facts: Facts) -> Decision:
    """A comment: a command from someone allowed, on a research pull request of this repository."""
    if ev.from_bot or ev.number is None:
        return Decision(NOTHING)  # bots are never obeyed nor answered: two bots could answer each other forever
    parsed = commands.parse(ev.comment_body)
    if parsed is None:
        return Decision(NOTHING)
    line, number = parsed.line, ev.number
    if ev.action != "created":
        return Decision(NOTHING, (Reply(number, refusal(line, feedback.EDITED)),) if ev.action == "edited" else ())
    seen: tuple[Effect, ...] = (React(ev.comment_id, feedback.EYES),) if ev.comment_id is not None else ()

    def answer(text: str) -> Decision:
        return Decision(NOTHING, (*seen, Reply(number, text)))

    if not ev.on_pull:
        return answer(refusal(line, feedback.NOT_A_PULL))
    allowed = list(config.github.allowed_roles)
    role = facts.role(ev.author)
    if role not in allowed:
        if facts.refused_before(number, ev.author):
            return Decision(NOTHING, seen)  # one refusal per person per pull request: a spammer cannot make it spam
        return answer(refusal(line, feedback.NOT_ALLOWED.format(login=ev.author, role=role, allowed=", ".join(allowed)))
                      + refused_marker(ev.author))
    if isinstance(parsed, Problem):
        return answer(refusal(line, parsed.reason, with_help=True))
    if parsed.verb in ANYWHERE:
        return answer(ANYWHERE[parsed.verb](parsed))
    target = research_target(ev, config, facts.head(number))
    if isinstance(target, str):
        return answer(refusal(line, target))
    decided = HANDLERS[parsed.verb](Ask(parsed, target, ev.author, number, ev.comment_id), facts)
    return Decision(decided.order, (*seen, *decided.effects))


def research_target(ev: Event, config: Config, head: effects.Head) -> Target | str:
    """The loop a pull request's branch names, or why its comments take no commands."""
    if head.repo != ev.repository:
        return feedback.FORK
    if not head.ref.startswith(BRANCH_PREFIX):
        return feedback.not_research(head.ref)
    name = head.ref.removeprefix(BRANCH_PREFIX)
    if name not in config.loops:
        return feedback.unknown_loop(head.ref, name, config.path)
    return Target(name, tuple(config.loops[name].runner), config.loops[name].runners)


def _status(ask: Ask, facts: Facts) -> Decision:
    return ask.answer(feedback.status(ask.target.loop, facts.record(ask.target.loop)))


def _stop(ask: Ask, facts: Facts) -> Decision:
    loop = ask.target.loop
    return Decision(NOTHING, (
        AddNote(loop, "pause", {"by": ask.author}),
        Reply(ask.number, feedback.done(ask.command.line, f"Stopped `{loop}`: the schedule skips it; a running job "
                                        "stops when its experiments are done. `/autoresearch continue` resumes it."))))


def _redirect(ask: Ask, facts: Facts) -> Decision:
    text = notes.redirect_text(ask.command.text)
    if not text:
        return ask.refuse("nothing is left of the redirect text once markup is removed")
    loop = ask.target.loop
    return Decision(NOTHING, (
        AddNote(loop, "redirect", {"text": text, "by": ask.author}),
        Reply(ask.number, feedback.done(ask.command.line,
                                        f"Noted for `{loop}`: the agent sees it from its next experiment on."))))


def _revert(ask: Ask, facts: Facts) -> Decision:
    experiment = ask.command.experiment or 0
    problem = revert_problem(facts.record(ask.target.loop), experiment)
    return ask.refuse(problem) if problem else ask.run("revert", experiment=experiment)


def _rebase(ask: Ask, facts: Facts) -> Decision:
    return ask.run("rebase")


def _continue(ask: Ask, facts: Facts) -> Decision:
    record = facts.record(ask.target.loop)
    resume = (AddNote(ask.target.loop, "resume", {"by": ask.author}),) if record is not None and record.paused else ()
    return ask.run("continue", experiments=ask.command.experiments, notes_first=resume)


def _help(cmd: Command) -> str:
    return feedback.HELP


# One handler per verb; `help` answers on any pull request, the others only on a research one.
HANDLERS: dict[str, Callable[[Ask, Facts], Decision]] = {
    "status": _status, "stop": _stop, "redirect": _redirect, "revert": _revert, "rebase": _rebase,
    "continue": _continue,
}
ANYWHERE: dict[str, Callable[[Command], str]] = {"help": _help}


def revert_problem(record: Record | None, experiment: int) -> str:
    """Why experiment cannot be reverted ('' when it can)."""
    if record is None:
        return "the loop has not run yet"
    attempt = record.attempt(experiment)
    if attempt is None:
        return f"there is no experiment {experiment} (the last is {record.next_experiment - 1})"
    if attempt.status != "keep":
        return f"experiment {experiment} was not kept ({attempt.status}); only kept experiments can be reverted"
    return ""


# -- the schedule and dispatches -------------------------------------------------------------------
def on_schedule(ev: Event, config: Config, facts: Facts, now: float) -> Decision:
    """Every open research pull request of this repository whose loop is not stopped and is due, most overdue first."""
    said: list[Effect] = []
    waiting: list[tuple[str, float | None, float | None]] = []
    for name in research_loops(ev, config, facts.open_pulls()):
        try:
            record = facts.record(name)
        except ArlError as exc:  # one broken loop must not keep the others from running
            said.append(Say(f"skipping {name}: {exc}"))
            continue
        if record is not None and record.paused:
            said.append(Say(f"{name} is stopped (`/autoresearch continue` resumes it)"))
            continue
        waiting.append((name, config.loops[name].schedule.every_s, last_run_end(record)))
    ready = due(waiting, now)
    said += [Say(f"{name} is not due yet (schedule.every: {every_s or 0:g} s)")
             for name, every_s, _ in waiting if name not in ready]
    targets = tuple(Target(name, tuple(config.loops[name].runner), config.loops[name].runners) for name in ready)
    return Decision(Order(run=bool(targets), targets=targets, command="run", experiments=ev.experiments),
                    tuple(said))


def last_run_end(record: Record | None) -> float | None:
    """When the loop's last run ended (time.time()), from the record's run_end notes; None: never."""
    for note in reversed(record.notes if record is not None else []):
        if note.kind == "run_end":
            try:
                return names.parse_stamp(note.at).timestamp()
            except ValueError:
                return None  # a damaged time: treat the loop as due rather than starve it
    return None


def due(loops: list[tuple[str, float | None, float | None]], now: float) -> list[str]:
    """Names of the loops due at now, most overdue first; each is (name, cadence in s or None, last run end or None).

    A loop without a cadence is due at every tick; one that never ran is the most overdue of all.
    """
    overdue = [(name, now - (end + (every or 0.0)) if end is not None else float("inf"))
               for name, every, end in loops]
    ready = [(name, late) for name, late in overdue if late >= 0]
    return [name for name, _ in sorted(ready, key=lambda item: -item[1])]  # stable: config order breaks ties


def research_loops(ev: Event, config: Config, pulls: list[effects.Head]) -> list[str]:
    """Loops with an open research pull request in this repository, in config order."""
    open_loops = {h.ref.removeprefix(BRANCH_PREFIX) for h in pulls
                  if h.repo == ev.repository and h.ref.startswith(BRANCH_PREFIX)}
    return [name for name in config.loops if name in open_loops]


def on_dispatch(ev: Event, config: Config, facts: Facts, *, actor: str, dry_run: bool) -> Decision:
    """Start or continue the loop asked for (or the only one); a stopped loop is resumed by asking."""
    loop = config.loop(ev.loop)
    order = Order(run=True, targets=(Target(loop.name, tuple(loop.runner), loop.runners),), command="run",
                  experiments=ev.experiments)
    if dry_run:
        return Decision(order)  # a dry run leaves the record alone
    record = facts.record(loop.name)
    if record is None or not record.paused:
        return Decision(order)
    if actor.endswith("[bot]"):  # the bot's own hand-over to a new job: a person's `stop` since then wins
        return Decision(NOTHING, (Say(f"{loop.name} is stopped (`/autoresearch continue` resumes it)"),))
    return Decision(order, (AddNote(loop.name, "resume", {"by": "workflow_dispatch"}),))
