"""The gate: read the event, authorise the person, react and answer; decide what the research job runs."""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from .. import commands, names
from ..commands import Command, Problem
from ..errors import ArlError
from ..record import Record
from . import feedback, notes, runreply
from .client import GitHubError
from .context import Context
from .feedback import Feedback, refusal
from .outputs import Order, Target

NOTHING = Order(run=False)
BRANCH_PREFIX = names.BRANCH_PREFIX


def decide(ctx: Context) -> Order:
    """What the event asks for, after every check; side effects are reactions, replies and record notes."""
    kind = ctx.event.kind
    if kind == "comment":
        return on_comment(ctx)
    if kind == "schedule":
        return on_schedule(ctx)
    if kind in ("dispatch", "cli"):
        return on_dispatch(ctx)
    print(f"arl-bot: nothing to do for a {ctx.event.name!r} event", file=sys.stderr)
    return NOTHING


def on_comment(ctx: Context) -> Order:
    """A comment: a command from someone allowed, on a research pull request of this repository."""
    ev = ctx.event
    if ev.from_bot or ev.number is None:
        return NOTHING  # bots are never obeyed nor answered: two bots could answer each other forever
    parsed = commands.parse(ev.comment_body)
    if parsed is None:
        return NOTHING
    fb = Feedback(ctx.gh, ev.number, ev.comment_id)
    line = parsed.line
    if ev.action != "created":
        if ev.action == "edited":
            fb.reply(refusal(line, feedback.EDITED))
        return NOTHING
    fb.react(feedback.EYES)
    if not ev.on_pull:
        fb.reply(refusal(line, feedback.NOT_A_PULL))
        return NOTHING
    allowed = list(ctx.config.github.allowed_roles)
    role = ctx.gh.role(ev.author)
    if role not in allowed:
        if refused_before(ctx, ev.number, ev.author):
            return NOTHING  # one refusal per person per pull request: a spammer cannot make the bot spam
        fb.reply(refusal(line, feedback.NOT_ALLOWED.format(login=ev.author, role=role,
                                                           allowed=", ".join(allowed))) + refused_marker(ev.author))
        return NOTHING
    if isinstance(parsed, Problem):
        fb.reply(refusal(line, parsed.reason, with_help=True))
        return NOTHING
    if parsed.verb == "help":
        fb.reply(feedback.HELP)
        return NOTHING
    target = _research_target(ctx, fb, line)
    if target is None:
        return NOTHING
    order = _command(ctx, fb, parsed, target)
    if order.run:
        order = _queued_reply(ctx, order, line, target)
    return order


def _queued_reply(ctx: Context, order: Order, line: str, target: Target) -> Order:
    """Say which runner the research job waits for; the job edits this reply when it starts and ends."""
    assert ctx.event.number is not None
    try:
        reply = ctx.gh.comment(ctx.event.number, runreply.queued(line, target.loop, target.runner))
    except GitHubError as exc:  # the run matters more than the reply
        print(f"arl-bot: could not post the queued reply: {ctx.redact(exc.message)}", file=sys.stderr)
        return order
    return replace(order, reply=reply)


def refused_marker(login: str) -> str:
    """The hidden line that marks the bot's refusal of login (logins are letters, digits and '-')."""
    return f"\n<!-- arl-bot:refused {login.lower()} -->"


def refused_before(ctx: Context, number: int, login: str) -> bool:
    """Whether the bot already refused login on this thread (only the bot's own comments count: they are Bots)."""
    marker = refused_marker(login).strip()
    return any(c.user_type == "Bot" and marker in c.body for c in ctx.gh.comments(number))


def _research_target(ctx: Context, fb: Feedback, line: str) -> Target | None:
    ev = ctx.event
    assert ev.number is not None
    pull = ctx.gh.pull(ev.number)
    if pull.head_repo != ev.repository:
        fb.reply(refusal(line, feedback.FORK))
        return None
    if not pull.head_ref.startswith(BRANCH_PREFIX):
        fb.reply(refusal(line, feedback.not_research(pull.head_ref)))
        return None
    name = pull.head_ref.removeprefix(BRANCH_PREFIX)
    if name not in ctx.config.loops:
        fb.reply(refusal(line, feedback.unknown_loop(pull.head_ref, name, ctx.config.path)))
        return None
    return Target(name, tuple(ctx.config.loops[name].runner))


def _command(ctx: Context, fb: Feedback, cmd: Command, target: Target) -> Order:
    ev = ctx.event
    loop = target.loop
    if cmd.verb == "status":
        fb.reply(feedback.status(loop, notes.load(ctx.repo, loop, ctx.sync_remote)))
        return NOTHING
    if cmd.verb == "stop":
        notes.add(ctx.repo, loop, "pause", {"by": ev.author}, ctx.sync_remote)
        fb.reply(feedback.done(cmd.line, f"Stopped `{loop}`: the schedule skips it; a running job stops when "
                                         "its experiments are done. `/autoresearch continue` resumes it."))
        return NOTHING
    if cmd.verb == "redirect":
        text = notes.redirect_text(cmd.text)
        if not text:
            fb.reply(refusal(cmd.line, "nothing is left of the redirect text once markup is removed"))
            return NOTHING
        notes.add(ctx.repo, loop, "redirect", {"text": text, "by": ev.author}, ctx.sync_remote)
        fb.reply(feedback.done(cmd.line, f"Noted for `{loop}`: the agent sees it from its next experiment on."))
        return NOTHING
    record = notes.load(ctx.repo, loop, ctx.sync_remote)
    if cmd.verb == "revert":
        problem = _revert_problem(record, cmd.experiment or 0)
        if problem:
            fb.reply(refusal(cmd.line, problem))
            return NOTHING
        return Order(run=True, targets=(target,), command="revert", experiment=cmd.experiment, pr=ev.number,
                     comment_id=ev.comment_id)
    if cmd.verb == "rebase":
        return Order(run=True, targets=(target,), command="rebase", pr=ev.number, comment_id=ev.comment_id)
    if record is not None and record.paused:
        notes.add(ctx.repo, loop, "resume", {"by": ev.author}, ctx.sync_remote)
    return Order(run=True, targets=(target,), command="continue", experiments=cmd.experiments, pr=ev.number,
                 comment_id=ev.comment_id)


def _revert_problem(record: Record | None, experiment: int) -> str:
    if record is None:
        return "the loop has not run yet"
    attempt = record.attempt(experiment)
    if attempt is None:
        return f"there is no experiment {experiment} (the last is {record.next_experiment - 1})"
    if attempt.status != "keep":
        return f"experiment {experiment} was not kept ({attempt.status}); only kept experiments can be reverted"
    return ""


def on_schedule(ctx: Context) -> Order:
    """Every open research pull request of this repository whose loop is not stopped and is due, most overdue first."""
    waiting: list[tuple[str, float | None, float | None]] = []
    for name in research_loops(ctx):
        try:
            record = notes.load(ctx.repo, name, ctx.sync_remote)
        except ArlError as exc:  # one broken loop must not keep the others from running
            print(f"arl-bot: skipping {name}: {ctx.redact(str(exc))}", file=sys.stderr)
            continue
        if record is not None and record.paused:
            print(f"arl-bot: {name} is stopped (`/autoresearch continue` resumes it)", file=sys.stderr)
            continue
        waiting.append((name, ctx.config.loops[name].schedule.every_s, last_run_end(record)))
    names = due(waiting, time.time())
    for name, every_s, _ in waiting:
        if name not in names:
            print(f"arl-bot: {name} is not due yet (schedule.every: {every_s or 0:g} s)", file=sys.stderr)
    targets = tuple(Target(name, tuple(ctx.config.loops[name].runner)) for name in names)
    return Order(run=bool(targets), targets=targets, command="run", experiments=ctx.event.experiments)


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


def research_loops(ctx: Context) -> list[str]:
    """Loops with an open research pull request in this repository, in config order."""
    open_loops = {p.head_ref.removeprefix(BRANCH_PREFIX) for p in ctx.gh.pulls(state="open")
                  if p.head_repo == ctx.event.repository and p.head_ref.startswith(BRANCH_PREFIX)}
    return [name for name in ctx.config.loops if name in open_loops]


def on_dispatch(ctx: Context) -> Order:
    """Start or continue the loop asked for (or the only one); a stopped loop is resumed by asking."""
    loop = ctx.config.loop(ctx.event.loop)
    if not ctx.dry_run:
        record = notes.load(ctx.repo, loop.name, ctx.sync_remote)
        if record is not None and record.paused:
            if ctx.env.get("GITHUB_ACTOR", "").endswith("[bot]"):
                # The bot's own hand-over to a new job: a person's `stop` since then wins.
                print(f"arl-bot: {loop.name} is stopped (`/autoresearch continue` resumes it)", file=sys.stderr)
                return NOTHING
            notes.add(ctx.repo, loop.name, "resume", {"by": "workflow_dispatch"}, ctx.sync_remote)
    return Order(run=True, targets=(Target(loop.name, tuple(loop.runner)),), command="run",
                 experiments=ctx.event.experiments)
