"""Render the Action's job summary: the run's own figures, then the same story as the pull request."""

from __future__ import annotations

from datetime import datetime

from . import measurement_view
from .prbody import BodyContext, attempt_row, cell, change, fmt, kept_table, metric_table, progress_section
from .progress import clock
from .record import Attempt, Record
from .sanitize import code_span

RUN_ROWS = 50  # attempts listed for one run; GitHub caps a step summary at 1 MiB
KEPT_ROWS = 15
STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def run_elapsed(record: Record, run_attempts: list[Attempt]) -> float | None:
    """Wall time of the run that made these attempts, from its start and end notes in the record."""
    run_id = run_attempts[0].run_id if run_attempts else ""
    start = next((n.at for n in record.notes if n.kind == "run_start" and n.data.get("run_id") == run_id), None)
    end = next((n.at for n in reversed(record.notes) if n.kind == "run_end" and n.data.get("run_id") == run_id),
               None)
    if not run_id or start is None or end is None:
        return None
    try:
        return (datetime.strptime(end, STAMP) - datetime.strptime(start, STAMP)).total_seconds()
    except ValueError:
        return None


def run_figures(record: Record, run_attempts: list[Attempt], ctx: BodyContext,
                elapsed_s: float | None = None) -> list[str]:
    """What this run did: experiments, keeps, best before and after, time and cost."""
    counts = {s: sum(1 for a in run_attempts if a.status == s) for s in ("keep", "discard", "crash", "invalid")}
    before = next((a.best_before for a in run_attempts if a.best_before is not None), None)
    after = record.best.metric if record.best else None
    elapsed = run_elapsed(record, run_attempts) if elapsed_s is None else elapsed_s
    agent_s = sum(a.agent_s for a in run_attempts)
    eval_s = sum(a.eval_s for a in run_attempts)
    time = clock(elapsed) if elapsed is not None else clock(agent_s + eval_s)
    out = [
        "| this run | |", "| --- | --- |",
        f"| experiments | {len(run_attempts)}: {counts['keep']} kept, {counts['discard']} discarded, "
        f"{counts['crash']} crashed, {counts['invalid']} invalid |",
        f"| {ctx.metric} | {fmt(before)} → {fmt(after)}"
        + (f": {change(before, after, ctx.goal)}" if before is not None else "") + " |",
        f"| time | {time} (agent {clock(agent_s)}, evaluation {clock(eval_s)}) |",
        f"| cost | ${sum(a.cost_usd for a in run_attempts):.2f}, "
        f"{sum(a.tokens_in for a in run_attempts):,} tokens in, {sum(a.tokens_out for a in run_attempts):,} out |",
    ]
    if record.stop_reason:
        out.append(f"| stopped | {cell(record.stop_reason, 200)} |")
    if ctx.run_url:
        out.append(f"| run | [{ctx.run_url.rsplit('/', 1)[-1]}]({ctx.run_url}) |")
    return out


def render_summary(record: Record, run_attempts: list[Attempt], ctx: BodyContext,
                   elapsed_s: float | None = None) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY (pure: data in, Markdown out)."""
    out = [f"## 🔬 autoresearch: {code_span(ctx.loop)}", ""]
    if ctx.sandbox_warning:
        out += [f"> [!WARNING]\n> {ctx.sandbox_warning}", ""]
    out += run_figures(record, run_attempts, ctx, elapsed_s)
    shown = run_attempts[-RUN_ROWS:]
    if shown:
        out += ["", "### Experiments this run", "",
                "| # | status | metric | Δ | description | why | commit |",
                "| --- | --- | --- | --- | --- | --- | --- |", *[attempt_row(a, ctx) for a in reversed(shown)]]
        if len(run_attempts) > len(shown):
            out += ["", f"…and {len(run_attempts) - len(shown)} earlier in this run: "
                        f"{code_span(f'arl-bot results --loop {ctx.loop}')}"]
    out += ["", "### The loop so far", "", *metric_table(record, ctx), *measurement_view.section(record)]
    for section in (progress_section(record, ctx), kept_table(record, ctx, KEPT_ROWS)):
        if section:
            out += ["", *section]
    return "\n".join(out) + "\n"
