"""Render the research pull request's body from the record alone (pure: data in, Markdown out)."""

from __future__ import annotations

from dataclasses import dataclass

from .record import Attempt, Record

MARKER = "<!-- arl-bot:pr-body loop={loop} -->"
END_MARKER = "<!-- arl-bot:pr-body-end -->"
GITHUB_LIMIT = 65_536  # GitHub rejects longer pull-request bodies
BUDGET = 60_000  # what we allow ourselves, leaving room for a person's text after the end marker
LATEST = 15  # rows in "latest experiments"
KEPT_ROWS = 30  # rows in "kept experiments"
CHART_POINTS = 60  # points in the Mermaid chart; longer histories are sampled
SPARK = "▁▂▃▄▅▆▇█"
STATUS_ICON = {"baseline": "🏁", "keep": "✅", "discard": "➖", "crash": "💥", "invalid": "🚫",
               "interrupted": "⏸️"}
COMMANDS = """\
| command | what it does |
| --- | --- |
| `/autoresearch continue [N]` | run N more experiments (default: the budget) |
| `/autoresearch stop` | stop after the current experiment; the schedule skips this loop |
| `/autoresearch revert <experiment>` | undo a kept experiment (a new commit), then re-measure |
| `/autoresearch redirect <text>` | tell the agent where to look next |
| `/autoresearch status` | reply with where the loop stands |
| `/autoresearch help` | list these commands |"""


@dataclass(frozen=True)
class BodyContext:
    """What the body needs besides the record."""

    loop: str
    goal: str
    metric: str
    commit_url: str = ""  # e.g. https://github.com/o/r/commit/{sha}; empty: plain SHAs
    run_url: str = ""
    sandbox_warning: str = ""


def fmt(value: float | None) -> str:
    """A metric as people read it."""
    return "—" if value is None else f"{value:.6g}"


def change(baseline: float | None, best: float | None, goal: str) -> str:
    """Best against baseline, with the sign and a word saying whether it is better."""
    if baseline is None or best is None:
        return "—"
    delta = best - baseline
    pct = f" ({delta / abs(baseline) * 100:+.2f}%)" if baseline else ""
    better = (delta < 0) if goal == "minimize" else (delta > 0)
    word = "better" if better else ("no change" if delta == 0 else "worse")
    return f"{delta:+.6g}{pct}, {word}"


def best_so_far(record: Record) -> list[tuple[int, float]]:
    """(experiment, best metric after it) for every attempt since the baseline."""
    points: list[tuple[int, float]] = []
    best: float | None = None
    for attempt in record.attempts:
        if attempt.status in ("baseline", "keep") and attempt.metric is not None:
            best = attempt.metric
        if best is not None:
            points.append((attempt.experiment, best))
    return points


def sparkline(values: list[float], width: int = 40) -> str:
    """Unicode blocks, one per (sampled) value, for places that do not render Mermaid."""
    if not values:
        return ""
    values = _sample(values, width)
    low, high = min(values), max(values)
    span = high - low or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * (len(SPARK) - 1) + 0.5))] for v in values)


def _sample(values: list[float], n: int) -> list[float]:
    if len(values) <= n:
        return values
    step = (len(values) - 1) / (n - 1)
    return [values[round(i * step)] for i in range(n)]


def mermaid_chart(record: Record, ctx: BodyContext) -> str:
    """An xychart of every measured attempt and the best-so-far line; GitHub renders it natively."""
    measured = [(a.experiment, a.metric) for a in record.attempts if a.metric is not None]
    if not measured:
        return ""
    best = dict(best_so_far(record))
    if len(measured) > CHART_POINTS:
        step = (len(measured) - 1) / (CHART_POINTS - 1)
        measured = [measured[round(i * step)] for i in range(CHART_POINTS)]
    xs = [str(e) for e, _ in measured]
    tried = [m for _, m in measured if m is not None]
    line = [best.get(e, m) for e, m in measured if m is not None]
    low, high = min(tried + line), max(tried + line)
    pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    return "\n".join([
        "```mermaid",
        "xychart-beta",
        f'  title "{ctx.metric} by experiment ({ctx.goal})"',
        f"  x-axis [{', '.join(xs)}]",
        f'  y-axis "{ctx.metric}" {low - pad:.6g} --> {high + pad:.6g}',
        f"  bar [{', '.join(f'{v:.6g}' for v in tried)}]",
        f"  line [{', '.join(f'{v:.6g}' for v in line)}]",
        "```",
    ])


def _sha(sha: str | None, ctx: BodyContext) -> str:
    if not sha:
        return ""
    short = sha[:8]
    return f"[`{short}`]({ctx.commit_url.format(sha=sha)})" if ctx.commit_url else f"`{short}`"


def _cell(text: str, limit: int = 80) -> str:
    # A description comes from the agent: keep it on one line and unable to break the table or inject HTML.
    text = " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _row(a: Attempt, ctx: BodyContext) -> str:
    delta = "" if a.delta is None or a.status == "baseline" else f"{a.delta:+.4g}"
    why = a.reason if a.status in ("crash", "invalid", "interrupted") else ""
    return (f"| {a.experiment} | {STATUS_ICON.get(a.status, '')} {a.status} | {fmt(a.metric)} | {delta} | "
            f"{_cell(a.description)} | {_cell(why, 60)} | {_sha(a.sha, ctx)} |")


def render(record: Record, ctx: BodyContext) -> str:
    """The whole body; always under GitHub's limit however long the loop has run."""
    body = _render(record, ctx, LATEST, KEPT_ROWS)
    latest, kept = LATEST, KEPT_ROWS
    while len(body) > BUDGET and (latest > 3 or kept > 3):
        latest, kept = max(3, latest // 2), max(3, kept // 2)
        body = _render(record, ctx, latest, kept)
    return body


def _render(record: Record, ctx: BodyContext, latest: int, kept_rows: int) -> str:
    baseline = record.baseline
    best = record.best
    counts = record.counts()
    tried = sum(1 for a in record.attempts if a.status not in ("baseline",))
    out = [MARKER.format(loop=ctx.loop), f"## 🔬 autoresearch: `{ctx.loop}`", ""]
    if ctx.sandbox_warning:
        out += [f"> [!WARNING]\n> {ctx.sandbox_warning}", ""]
    out += [
        f"| {ctx.metric} ({ctx.goal}) | value |", "| --- | --- |",
        f"| baseline | {fmt(baseline.metric if baseline else None)} |",
        f"| best | {fmt(best.metric if best else None)}"
        + (f" (experiment {best.experiment})" if best and best.status == "keep" else "") + " |",
        f"| change | {change(baseline.metric if baseline else None, best.metric if best else None, ctx.goal)} |",
        f"| experiments | {tried} tried, {counts['keep']} kept, {counts['discard']} discarded, "
        f"{counts['crash']} crashed, {counts['invalid']} invalid |",
        f"| cost | ${record.total_cost:.2f}, "
        f"{sum(a.tokens_in for a in record.attempts):,} tokens in, "
        f"{sum(a.tokens_out for a in record.attempts):,} out |",
    ]
    reason = record.stop_reason
    status = "⏸️ stopped by a command" if record.paused else (f"stopped: {reason}" if reason else "running")
    out += [f"| status | {_cell(status, 200)} |"]
    if ctx.run_url:
        out += [f"| last run | [{ctx.run_url.rsplit('/', 1)[-1]}]({ctx.run_url}) |"]
    chart = mermaid_chart(record, ctx)
    if chart:
        spark = sparkline([v for _, v in best_so_far(record)])
        out += ["", "### Progress", "", chart, "", f"Best so far: `{spark}`"]
    rows = record.attempts[-latest:]
    out += ["", "### Latest experiments", "",
            "| # | status | metric | Δ | description | why | commit |",
            "| --- | --- | --- | --- | --- | --- | --- |", *[_row(a, ctx) for a in reversed(rows)]]
    if len(record.attempts) > latest:
        out += ["", f"…and {len(record.attempts) - latest} earlier attempts: `arl-bot results --loop {ctx.loop}`"]
    kept = [a for a in record.attempts if a.status == "keep"]
    if kept:
        shown = kept[-kept_rows:]
        out += ["", "### Kept experiments", "", "| # | metric | Δ | description | commit |",
                "| --- | --- | --- | --- | --- |"]
        out += [f"| {a.experiment} | {fmt(a.metric)} | {a.delta:+.4g} | {_cell(a.description)} | "
                f"{_sha(a.sha, ctx)} |" if a.delta is not None else
                f"| {a.experiment} | {fmt(a.metric)} | | {_cell(a.description)} | {_sha(a.sha, ctx)} |"
                for a in reversed(shown)]
        if len(kept) > len(shown):
            out += ["", f"…and {len(kept) - len(shown)} earlier keeps."]
    out += ["", "<details><summary>Commands</summary>", "", COMMANDS, "", "</details>", "", END_MARKER]
    return "\n".join(out) + "\n"
