"""The research job: run the loops the gate allowed, keep their pull requests current, report outputs."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .. import names
from ..config import Loop
from ..errors import ArlError
from ..loop import RunOptions, RunSummary
from ..progress import LinePrinter
from ..rebase import rebase
from ..record import Record
from ..revert import revert
from ..start import DRY_RUN_TITLE, prepare_run
from ..store import RecordStore
from ..views import cell, fmt
from . import chain, feedback, gate, notes, runreply
from .client import GitHubError
from .context import Context
from .outputs import Order, Target, annotate, append_summary, failure_summary, write_outputs
from .pr import PullRequestView, seed_branch
from .runner_check import require_loops_ready

HANDED_OVER = " (this job's share; the loop continues in a new job)"


@dataclass
class Outcome:
    """How one loop's run went."""

    loop: str
    summary: RunSummary | None = None
    pr: int | None = None
    skipped: str = ""
    handed_over: bool = False  # the loop goes on in a new job (its job budget ran out, not the loop's)


def run(ctx: Context, order: Order) -> int:
    """Run every target in turn; one failing loop does not stop the others. Returns the exit code."""
    targets = list(order.targets) or _default_targets(ctx)
    require_loops_ready(ctx.env, ctx.config.loops, (t.loop for t in targets))  # before the GPU is used
    comment_id = order.comment_id or ctx.event.comment_id
    if comment_id is not None and ctx.event.number is not None and ctx.github is not None and targets:
        fb = feedback.Feedback(ctx.github, ctx.event.number, comment_id)
        fb.react(feedback.ROCKET)
        for warning in fb.warnings:
            annotate("warning", ctx.redact(warning))
    tracker = _tracker(ctx, order, targets)
    if tracker is not None:  # the person who asked sees, in the gate's reply, that a runner took it
        tracker.add(runreply.started(ctx.env.get("RUNNER_NAME", ""), ctx.event.run_url))
    failed = 0
    for target in targets:
        try:
            outcome = run_one(ctx, order, target)
        except ArlError as exc:
            failed += 1
            _report_failure(ctx, order, target, exc)
            if tracker is not None:
                tracker.add(runreply.failed(ctx.redact(str(exc))))
            continue
        _report(ctx, outcome)
        if tracker is not None:
            tracker.add(_finished(ctx, outcome))
    for warning in tracker.warnings if tracker is not None else []:
        annotate("warning", ctx.redact(warning))
    return 1 if failed else 0


def _tracker(ctx: Context, order: Order, targets: list[Target]) -> runreply.Tracker | None:
    """The reply this job tells its story in: the gate's, or, for a loop's later `runners:` jobs, one of its own.

    GitHub has no compare-and-swap on a comment: jobs that each read the reply, add a line and write it back
    lose one another's lines. So every reply has one writer: the first job the gate's, each other job its own.
    """
    if not order.reply or ctx.github is None:
        return None
    if order.shard == 0:
        return runreply.Tracker(ctx.github, order.reply)
    number = order.pr or ctx.event.number
    if number is None or not targets:
        return None
    loop = targets[0].loop
    jobs = ctx.config.loops[loop].runners if loop in ctx.config.loops else order.shard + 1
    reply_url = f"{ctx.event.server_url}/{ctx.event.repository}/pull/{number}#issuecomment-{order.reply}"
    text = runreply.joined(loop, order.shard, max(jobs, order.shard + 1), reply_url)
    try:
        return runreply.Tracker(ctx.github, ctx.github.comment(number, text), body=text)
    except GitHubError as exc:
        annotate("warning", f"could not post this job's reply on #{number}: {ctx.redact(exc.message)}")
        return None


def _finished(ctx: Context, outcome: Outcome) -> str:
    if outcome.summary is None:
        return f"⏭️ Skipped: {outcome.skipped}."
    s, loop = outcome.summary, ctx.config.loop(outcome.loop)
    pr_url = f"{ctx.event.server_url}/{ctx.event.repository}/pull/{outcome.pr}" if outcome.pr else ""
    (tried, _, _), (baseline, best) = _spent(s), _ends(s.record)
    return runreply.finished(tried=tried, kept=s.kept, baseline=baseline, best=best, metric=loop.metric.name,
                             reason=s.reason + (HANDED_OVER if outcome.handed_over else ""), pr_url=pr_url)


def _default_targets(ctx: Context) -> list[Target]:
    if ctx.event.kind == "schedule":
        return list(gate.due_targets(ctx))  # the loops that are due, as the gate would pick them
    return [Target(ctx.config.loop(ctx.event.loop).name)]


def run_one(ctx: Context, order: Order, target: Target) -> Outcome:
    """Run one loop (or revert one experiment) with its pull request kept current."""
    loop = ctx.config.loop(target.loop)
    if order.command == "run" and ctx.event.kind == "schedule":
        record = notes.load(ctx.repo, loop.name, ctx.sync_remote)
        if record is not None and record.paused:  # stopped after the gate looked
            return Outcome(loop.name, skipped="stopped by a command; `/autoresearch continue` resumes it")
    if not ctx.dry_run:
        seed_branch(ctx.repo, loop, ctx.remote)
    record = RecordStore(ctx.repo, loop.name).load()
    leg = _leg(ctx, order, loop, record)
    # As many as the gate's matrix started; `phase: all` is the gate and one research job in one, whatever N.
    matrix = (ctx.env.get("ARL_PHASE") or "all").strip() == "research" and order.command in ("run", "continue")
    jobs = loop.runners if matrix else 1
    experiments = leg.experiments if leg else order.experiments
    if jobs > 1:  # the loop's budget is the run's: its jobs share it out
        total = experiments if experiments is not None else loop.budget.experiments
        experiments = chain.share(total, order.shard, jobs)
        if experiments == 0:
            asked = f"{total} experiment{'' if total == 1 else 's'}"
            return Outcome(loop.name, skipped=f"the {asked} asked for went to the loop's other research jobs "
                                              f"(`runners: {jobs}`)")
    budget = chain.job_budget(loop.budget, leg.hours if leg else loop.budget.hours, jobs)
    run_loop = loop if budget is loop.budget else loop.model_copy(update={"budget": budget})
    view: PullRequestView | None = None
    started = prepare_run(ctx.repo, ctx.config, run_loop, RunOptions(
        experiments=experiments, dry_run=ctx.dry_run, remote=ctx.remote,
        # A loop's research jobs of one workflow run (`runners:`) share GITHUB_RUN_ID: the shard tells them apart.
        run_id=ctx.event.job_run_id + (f".{order.shard}" if order.shard else ""), run_url=ctx.event.run_url,
        notes={"chain": leg.notes} if leg else {}),
        listeners=[LinePrinter()], require_isolation=True)
    session = started.session
    if ctx.github is not None and not ctx.dry_run:
        body = started.body_context(commit_url=f"{ctx.event.server_url}/{ctx.github.full_name}/commit/{{sha}}",
                                    run_url=ctx.event.run_url)
        view = PullRequestView(ctx.github, loop, body, number=order.pr, draft=ctx.config.github.draft)
        # Before the baseline: a token that may not open pull requests fails the job now, not hours later.
        view.prepare(ctx.repo, record)
        session.listeners.append(view)
    if order.command == "revert":
        assert order.experiment is not None
        summary = revert(session, order.experiment)
    elif order.command == "rebase":
        rebased = rebase(session)
        if rebased is None:
            return Outcome(loop.name, skipped=f"{loop.branch} already has its base branch's newest commit")
        summary = rebased
    else:
        summary = session.run()
    handed = False
    # One job hands a long loop on (the first); the new run starts all of the loop's jobs again.
    if leg is not None and order.shard == 0 and chain.handed_over(leg, summary.reason):
        tried = sum(1 for a in summary.attempts if a.status != "baseline")
        if tried == 0:  # handing over again would run nothing again, for ever
            raise ArlError(f"the job's budget ({leg.hours:g} h) ran out before one experiment of {loop.name} ended",
                           hint="raise `github.job_hours` in the config above the time one experiment takes")
        _hand_over(ctx, loop.name)
        handed = True
    current = False  # whether GitHub's body is known to show the record as the remote has it
    if view is not None and loop.runners > 1:  # the loop's other jobs may have posted an older record last
        try:
            current = view.catch_up(lambda: notes.load(ctx.repo, loop.name, ctx.sync_remote))
        except ArlError as exc:  # every result is pushed; only the body may lag until the next update
            annotate("warning", f"{loop.name}: could not check the pull request shows the other jobs' attempts: "
                                f"{ctx.redact(str(exc))}")
    if view is not None and view.errors and not current and not view.shows(summary.record):
        raise ArlError(f"the loop ran, but its pull request could not be updated: {view.errors[-1].message}",
                       hint="every result is on the research branch and its record; `/autoresearch status` "
                            "or the next run rebuilds the pull request's body")
    if ctx.dry_run:
        append_summary(ctx.env.get("GITHUB_STEP_SUMMARY"),
                       f"### {DRY_RUN_TITLE.capitalize()}\n\n{started.dry_run_body(summary.record)}")
    return Outcome(loop.name, summary, view.number if view else order.pr, handed_over=handed)


def _leg(ctx: Context, order: Order, loop: Loop, record: Record | None) -> chain.Leg | None:
    """This job's share of the loop's budget; None where no job chain applies (dry runs, reverts)."""
    if ctx.dry_run or ctx.github is None or order.command not in ("run", "continue"):
        return None
    # Only the bot's own dispatch continues a chain; a person's command or the schedule starts the budget anew.
    continuing = ctx.event.kind == "dispatch" and ctx.env.get("GITHUB_ACTOR", "").endswith("[bot]")
    job_h = chain.job_hours(ctx.config.github.job_hours, ctx.env.get("RUNNER_ENVIRONMENT", ""),
                            ctx.tokens is not None and ctx.tokens.app)
    return chain.plan(loop, record, continuing=continuing, job_h=job_h, experiments=order.experiments)


def _hand_over(ctx: Context, loop: str) -> None:
    """Start the next job of the chain: a new run of this workflow for this loop (workflow_dispatch)."""
    workflow_ref = ctx.env.get("GITHUB_WORKFLOW_REF", "")  # owner/repo/.github/workflows/x.yml@refs/heads/main
    path, _, ref = workflow_ref.partition("@")
    if not path or not ref:
        raise ArlError(f"{loop} used this job's budget and should continue in a new job, but GITHUB_WORKFLOW_REF "
                       f"({workflow_ref[:100]!r}) does not say which workflow to start",
                       hint="run it as a GitHub Actions job; the schedule or `/autoresearch continue` goes on")
    for prefix in ("refs/heads/", "refs/tags/"):
        ref = ref.removeprefix(prefix)
    try:
        ctx.gh.dispatch(path.rsplit("/", 1)[-1], ref, {"loop": loop})
    except GitHubError as exc:
        raise ArlError(f"{loop} used this job's budget, and the next job could not be started: {exc.message}",
                       hint="grant the research job `actions: write` (a workflow_dispatch starts the next job) and "
                            "keep `workflow_dispatch` with a `loop` input in the workflow; every result so far is "
                            "on the research branch, and the schedule or `/autoresearch continue` goes on") from None
    print(f"arl-bot: {loop}: this job's budget is used; the loop continues in a new run of {path}", file=sys.stderr)


def _report(ctx: Context, outcome: Outcome) -> None:
    loop = ctx.config.loop(outcome.loop)
    summary_path = ctx.env.get("GITHUB_STEP_SUMMARY")
    if outcome.summary is None:
        print(f"arl-bot: {outcome.loop}: skipped: {outcome.skipped}", file=sys.stderr)
        append_summary(summary_path, f"### arl-bot: `{outcome.loop}`\n\nSkipped: {outcome.skipped}")
        return
    s = outcome.summary
    tried, cost, tokens = _spent(s)
    baseline, best = _ends(s.record)
    write_outputs(ctx.env.get("GITHUB_OUTPUT"), {
        "baseline": "" if baseline is None else repr(baseline), "best": "" if best is None else repr(best),
        "experiments": str(tried), "kept": str(s.kept), "cost": f"{cost:.4f}", "tokens": str(tokens),
        "pr": "" if outcome.pr is None else str(outcome.pr), "branch": loop.branch,
    })
    pr = f"[#{outcome.pr}]({ctx.event.server_url}/{ctx.event.repository}/pull/{outcome.pr})" if outcome.pr else "—"
    append_summary(summary_path, summary_table(loop, s, pr, handed_over=outcome.handed_over))


def summary_table(loop: Loop, s: RunSummary, pr: str = "—", *, handed_over: bool = False) -> str:
    """The job summary's section for one loop's run; pr is a Markdown link (or a dash).

    The stop reason can quote an error (`error: <message>`), so it is one table cell whatever it holds.
    """
    tried, cost, tokens = _spent(s)
    baseline, best = _ends(s.record)
    return "\n".join([
        f"### arl-bot: `{loop.name}`", "", f"| {loop.metric.name} ({loop.metric.goal}) | |", "| --- | --- |",
        f"| baseline | {fmt(baseline)} |", f"| best | {fmt(best)} |",
        f"| this run | {tried} experiments, {s.kept} kept |",
        f"| cost | ${cost:.2f}, {tokens:,} tokens |",
        f"| stopped | {cell(s.reason, 200)}{HANDED_OVER if handed_over else ''} |",
        f"| pull request | {pr} |", f"| branch | `{loop.branch}` |",
    ])


def _spent(s: RunSummary) -> tuple[int, float, int]:
    """Experiments tried (the baseline is not one), dollars and tokens of this run."""
    return (sum(1 for a in s.attempts if a.status != "baseline"), sum(a.cost_usd for a in s.attempts),
            sum(a.tokens_in + a.tokens_out for a in s.attempts))


def _ends(record: Record) -> tuple[float | None, float | None]:
    """The baseline's metric and the best one (None: not measured)."""
    return (record.baseline.metric if record.baseline else None, record.best.metric if record.best else None)


def _report_failure(ctx: Context, order: Order, target: Target, exc: ArlError) -> None:
    message = ctx.redact(str(exc))
    annotate("error", f"{target.loop}: {message}")
    append_summary(ctx.env.get("GITHUB_STEP_SUMMARY"), failure_summary(target.loop, message))
    pr = order.pr
    if pr is None and ctx.github is not None:
        try:
            found = ctx.github.pulls(head_ref=names.branch(target.loop))
            pr = found[0].number if found else None
        except ArlError:
            pr = None
    if pr is None or ctx.github is None:
        return
    retry = {"revert": f"/autoresearch revert {order.experiment}", "rebase": "/autoresearch rebase",
             "continue": f"/autoresearch continue {order.experiments or ''}".rstrip()}.get(
        order.command, "/autoresearch continue")
    try:
        ctx.github.comment(pr, feedback.failure(f"`{target.loop}`: {message}", retry, ctx.event.run_url))
    except ArlError as again:
        annotate("warning", f"could not comment the failure on #{pr}: {ctx.redact(str(again))}")
