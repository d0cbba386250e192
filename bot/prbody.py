"""Render the research pull request's body from the record alone (pure: data in, Markdown out)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from . import guards, measurement_view, workers_view
from .record import Attempt, Record
from .sanitize import code_span
from .views import COMMANDS, NO_METRIC, bounds_of, cell, change, fmt, series

MARKER = "<!-- arl-bot:pr-body loop={loop} -->"
END_MARKER = "<!-- arl-bot:pr-body-end -->"
GITHUB_LIMIT = 65_536  # GitHub rejects longer pull-request bodies
BUDGET = 60_000  # what we allow ourselves, leaving room for a person's text after the end marker
LATEST = 15  # rows in "latest experiments"
KEPT_ROWS = 30  # rows in "kept experiments"
CHART_POINTS = 60  # bars in the Mermaid chart; longer histories are binned
LABELLED = 30  # up to this many attempts the x-axis names each one; past it the axis is numeric
SPARK_WIDTH = 40  # characters in the text fallback's sparklines
SPARK = "▁▂▃▄▅▆▇█"
BAR_COLOR, LINE_COLOR = "#8c959f", "#1a7f37"  # GitHub's neutral grey and success green
STATUS_ICON = {"baseline": "🏁", "keep": "✅", "discard": "➖", "crash": "💥", "invalid": "🚫",
               "interrupted": "⏸️"}


@dataclass(frozen=True)
class BodyContext:
    """What the body needs besides the record."""

    loop: str
    goal: str
    metric: str
    commit_url: str = ""  # e.g. https://github.com/o/r/commit/{sha}; empty: plain SHAs
    run_url: str = ""
    sandbox_warning: str = ""
    notice: str = ""  # a fact about the pull request itself (e.g. opened as a normal one: no drafts here)


def sparkline(values: list[float], width: int = SPARK_WIDTH) -> str:
    """Unicode blocks, one per (sampled) value, for places that do not render Mermaid."""
    if not values:
        return ""
    values = _sample(values, width)
    low, high = min(values), max(values)
    return "".join(_block(v, low, high) for v in values)


def _block(value: float | None, low: float, high: float) -> str:
    if value is None:
        return NO_METRIC
    # Halves: metrics of ±1.7e308 are finite, but their difference is not.
    span = high / 2 - low / 2 or 1.0
    value = min(max(value, low), high)
    return SPARK[min(len(SPARK) - 1, int((value / 2 - low / 2) / span * (len(SPARK) - 1) + 0.5))]


def _sample(values: list[float], n: int) -> list[float]:
    if len(values) <= n:
        return values
    step = (len(values) - 1) / (n - 1)
    return [values[round(i * step)] for i in range(n)]


def _quote(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")


def mermaid_chart(record: Record, ctx: BodyContext) -> str:
    """A bar per experiment (or bin) and the best-so-far line, as an xychart GitHub draws natively."""
    s = series(record, CHART_POINTS)
    bounds = bounds_of(s)
    if bounds is None:
        return ""
    low, high = bounds
    pad = (high * 0.05 - low * 0.05) or abs(high) * 0.05 or 1.0  # scaled first: high - low may overflow
    bottom, top = max(low - pad, -sys.float_info.max), min(high + pad, sys.float_info.max)
    if low >= 0 > bottom:  # a loss or an error rate: an axis below zero would only puzzle
        bottom = 0.0
    if s.binned or len(s.labels) > LABELLED:
        # Long histories: a numeric axis gets evenly spaced ticks instead of 60 crowded labels.
        x_axis = f'  x-axis "experiment" {s.first} --> {s.last}'
    else:
        labels = ", ".join(f'"{x}"' for x in s.labels)
        x_axis = f'  x-axis "experiment" [{labels}]'
    # A missing metric draws no bar (height zero at the axis floor); values beyond the range are clipped.
    bars = [bottom if v is None else min(max(v, bottom), top) for v in s.tried]
    first_best = next((v for v in s.best if v is not None), bottom)
    line = [first_best if v is None else v for v in s.best]
    what = f"median of every {len(record.attempts) // len(s.labels)}" if s.binned else "each experiment"
    return "\n".join([
        "```mermaid",
        '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "'
        f'{BAR_COLOR}, {LINE_COLOR}"' + "}}}}%%",
        "xychart-beta",
        f'  title "{_quote(ctx.metric)} ({ctx.goal}): bars {what}, line best so far"',
        x_axis,
        f'  y-axis "{_quote(ctx.metric)}" {bottom:.6g} --> {top:.6g}',
        f"  bar [{', '.join(f'{v:.6g}' for v in bars)}]",
        f"  line [{', '.join(f'{v:.6g}' for v in line)}]",
        "```",
    ])


class _Extremes:
    """The lowest and highest metric ever measured, folded incrementally (see Record.fold)."""

    def __init__(self) -> None:
        self.low: float | None = None
        self.high: float | None = None

    def add(self, attempt: Attempt) -> None:
        """Take one more attempt's metric into account."""
        if attempt.metric is not None:
            self.low = attempt.metric if self.low is None else min(self.low, attempt.metric)
            self.high = attempt.metric if self.high is None else max(self.high, attempt.metric)


def _scale(record: Record, low: float, high: float) -> str:
    """The real lowest and highest values; the cells' range too when a diverged run lies beyond it."""
    seen = record.fold("prbody.extremes", _Extremes, _Extremes.add)
    if seen.low is None or seen.high is None:
        return f"low = {fmt(low)}, high = {fmt(high)}"
    text = f"lowest = {fmt(seen.low)}, highest = {fmt(seen.high)}"
    if seen.low < low or seen.high > high:
        text += f"; the cells span {fmt(low)} … {fmt(high)}, values beyond it at the edge"
    return text


def text_chart(record: Record, ctx: BodyContext) -> str:
    """The same story in monospace text, for email, mobile and anything that shows raw Markdown."""
    s = series(record, SPARK_WIDTH)
    bounds = bounds_of(s)
    if bounds is None:
        return ""
    low, high = bounds
    baseline, best = record.baseline, record.best
    path = "—"
    if baseline is not None and best is not None and baseline.metric is not None and best.metric is not None:
        path = f"{fmt(baseline.metric)} → {fmt(best.metric)}"
        if baseline.metric:
            path += f" ({(best.metric - baseline.metric) / abs(baseline.metric) * 100:+.2f}%)"
    per = "per bin" if s.binned else "per experiment"
    return "\n".join([
        "```text",
        f"best so far  {''.join(' ' if v is None else _block(v, low, high) for v in s.best)}  {path}",
        f"each tried   {''.join(_block(v, low, high) for v in s.tried)}  one cell {per}; "
        f"{NO_METRIC} = no metric",
        f"experiments  {s.first} … {s.last}; {_scale(record, low, high)}",
        "```",
    ])


def _sha(sha: str | None, ctx: BodyContext) -> str:
    if not sha:
        return ""
    short = sha[:8]
    return f"[`{short}`]({ctx.commit_url.format(sha=sha)})" if ctx.commit_url else f"`{short}`"


def attempt_row(a: Attempt, ctx: BodyContext) -> str:
    """One attempt as a row of the latest-experiments table."""
    delta = "" if a.delta is None or a.status == "baseline" else f"{a.delta:+.4g}"
    why = a.reason if a.status in ("crash", "invalid", "interrupted") else ""
    if a.status == "discard" and guards.failed_guard(a):  # a better metric that a guard turned down
        why = f"turned down by guard {guards.failed_guard(a)}"
    return (f"| {a.experiment} | {STATUS_ICON.get(a.status, '')} {a.status} | {fmt(a.metric)} | {delta} | "
            f"{cell(a.description)} | {cell(why, 60)} | {_sha(a.sha, ctx)} |")


def metric_table(record: Record, ctx: BodyContext) -> list[str]:
    """Baseline, best, change, counts, cost and status as a two-column table."""
    baseline, best, counts = record.baseline, record.best, record.counts()
    tried = len(record.attempts) - record.counts().get("baseline", 0)
    out = [
        f"| {ctx.metric} ({ctx.goal}) | value |", "| --- | --- |",
        f"| baseline | {fmt(baseline.metric if baseline else None)} |",
        f"| best | {fmt(best.metric if best else None)}"
        + (f" (experiment {best.experiment})" if best and best.status == "keep" else "") + " |",
        f"| change | {change(baseline.metric if baseline else None, best.metric if best else None, ctx.goal)} |",
        f"| experiments | {tried} tried, {counts['keep']} kept, {counts['discard']} discarded, "
        f"{counts['crash']} crashed, {counts['invalid']} invalid |",
        f"| cost | ${record.total_cost:.2f}, "
        f"{record.total_tokens[0]:,} tokens in, "
        f"{record.total_tokens[1]:,} out |",
    ]
    reason = record.stop_reason
    status = "⏸️ stopped by a command" if record.paused else (f"stopped: {reason}" if reason else "running")
    out += [f"| status | {cell(status, 200)} |"]
    workers = workers_view.row(record)  # with several workers or device slots: throughput and device use
    if workers:
        out += [workers]
    if ctx.run_url:
        out += [f"| last run | [{ctx.run_url.rsplit('/', 1)[-1]}]({ctx.run_url}) |"]
    return out


def progress_section(record: Record, ctx: BodyContext) -> list[str]:
    """The chart GitHub draws, then the same in text for places that show raw Markdown."""
    chart = mermaid_chart(record, ctx)
    if not chart:
        return []
    return ["### Progress", "", chart, "", text_chart(record, ctx)]


def latest_table(record: Record, ctx: BodyContext, latest: int) -> list[str]:
    """The newest attempts, newest first."""
    rows = record.attempts[-latest:]
    out = ["### Latest experiments", "",
           "| # | status | metric | Δ | description | why | commit |",
           "| --- | --- | --- | --- | --- | --- | --- |", *[attempt_row(a, ctx) for a in reversed(rows)]]
    if len(record.attempts) > latest:
        out += ["", f"…and {len(record.attempts) - latest} earlier attempts: "
                    f"{code_span(f'arl-bot results --loop {ctx.loop}')}"]
    return out


def kept_table(record: Record, ctx: BodyContext, kept_rows: int) -> list[str]:
    """The keeps that make up the research branch, newest first."""
    kept = [a for a in record.kept if a.status == "keep"]
    if not kept:
        return []
    shown = kept[-kept_rows:]
    out = ["### Kept experiments", "", "| # | metric | Δ | description | commit |",
           "| --- | --- | --- | --- | --- |"]
    out += [f"| {a.experiment} | {fmt(a.metric)} | {'' if a.delta is None else f'{a.delta:+.4g}'} | "
            f"{cell(a.description)} | {_sha(a.sha, ctx)} |" for a in reversed(shown)]
    if len(kept) > len(shown):
        out += ["", f"…and {len(kept) - len(shown)} earlier keeps."]
    return out


def own(text: str, loop: str) -> str:
    """text between the bot's markers: the part of a body the bot may replace."""
    inner = text.rstrip("\n")
    return f"{MARKER.format(loop=loop)}\n{inner}\n\n{END_MARKER}\n"


def merge(current: str, ours: str) -> str:
    """The body to post: ours in place of the text between the markers, what people wrote around it kept."""
    start = current.find(MARKER.split("{", 1)[0])
    end = current.find(END_MARKER, start) if start >= 0 else -1
    if start < 0 or end < 0:
        # The markers are gone (someone rewrote the body): keep all of their words and put ours below.
        kept = current.rstrip()
        return f"{kept}\n\n{ours}" if kept else ours
    before, after = current[:start], current[end + len(END_MARKER):]
    return before + ours.rstrip("\n") + (after if after.strip() else "\n")


def base_moved(record: Record) -> str:
    """A line saying the base branch moved past the research branch, as the latest run found it ('' if not)."""
    for note in reversed(record.notes):
        if note.kind == "run_start":
            behind, branch = note.data.get("base_behind"), note.data.get("base_branch")
            if not isinstance(behind, int) or isinstance(behind, bool) or behind < 1 or not isinstance(branch, str):
                return ""
            return (f"{code_span(branch)} moved {behind} commit{'s' if behind > 1 else ''} ahead; "
                    "`/autoresearch rebase` brings them in (the research branch still builds on its old base)")
    return ""


def render(record: Record, ctx: BodyContext) -> str:
    """The whole body; always under GitHub's limit however long the loop has run."""
    body = _render(record, ctx, LATEST, KEPT_ROWS)
    latest, kept = LATEST, KEPT_ROWS
    while len(body) > BUDGET and (latest > 3 or kept > 3):
        latest, kept = max(3, latest // 2), max(3, kept // 2)
        body = _render(record, ctx, latest, kept)
    return body


def _render(record: Record, ctx: BodyContext, latest: int, kept_rows: int) -> str:
    out = [MARKER.format(loop=ctx.loop), f"## 🔬 autoresearch: {code_span(ctx.loop)}", ""]
    if ctx.sandbox_warning:
        out += [f"> [!WARNING]\n> {ctx.sandbox_warning}", ""]
    if ctx.notice:
        out += [f"> [!NOTE]\n> {ctx.notice}", ""]
    moved = base_moved(record)
    if moved:
        out += [f"> [!NOTE]\n> {moved}", ""]
    out += metric_table(record, ctx)
    out += measurement_view.section(record)  # keep rule, noise, holdout beside validation
    out += guards.pr_section(record)  # the guards in force, and what each keep passed
    for section in (progress_section(record, ctx), latest_table(record, ctx, latest),
                    kept_table(record, ctx, kept_rows)):
        if section:
            out += ["", *section]
    out += ["", "<details><summary>Commands</summary>", "", COMMANDS, "", "</details>", "", END_MARKER]
    return "\n".join(out) + "\n"
