"""Write one self-contained HTML report of a loop: plotly charts with their JavaScript embedded, no network."""

from __future__ import annotations

import html
import math
import statistics
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import guards, names, workers_view
from .measurement_view import holdout_value
from .record import Attempt, Record
from .views import best_so_far, bounds_of, change, fmt, series

KEPT_DIFFS = 100  # kept experiments shown with their diffs; older ones are listed by `arl-bot results`
DIFF_LINES = 400  # lines of one diff; the rest is cut with a note
LATEST_ROWS = 200  # rows in the attempts table
COLORS = {"baseline": "#0969da", "keep": "#1a7f37", "discard": "#8c959f", "crash": "#cf222e",
          "invalid": "#bf8700", "interrupted": "#8250df"}
FAILED = ("crash", "invalid", "interrupted")
Differ = Callable[[int], str]


def esc(text: object) -> str:
    """Escape text from agents, evaluations or GitHub for HTML (and for plotly's HTML-ish labels)."""
    return html.escape(str(text), quote=True)


def failure_kind(attempt: Attempt) -> str:
    """A short cause for a failed attempt, for the breakdown chart."""
    reason = attempt.reason.lower()
    if attempt.status == "interrupted":
        return "interrupted"
    if attempt.status == "invalid":
        for word, kind in (("protected", "touched protected paths"), ("outside editable", "outside editable paths"),
                           ("changed nothing", "empty change")):
            if word in reason:
                return f"invalid: {kind}"
        return "invalid: other rule"
    if reason.startswith("agent"):
        return "crash: agent timed out" if "timed out" in reason else "crash: agent failed"
    for words, kind in ((("timed out", "timeout"), "evaluation timed out"),
                        (("no metric", "no score", "gave no"), "no metric (missing or NaN)"),
                        (("exit", "status", "signal", "killed"), "evaluation exited with an error")):
        if any(w in reason for w in words):
            return f"crash: {kind}"
    return "crash: other"


def _when(attempt: Attempt) -> datetime | None:
    try:
        return names.parse_stamp(attempt.started_at)
    except ValueError:
        return None


def _hover(a: Attempt) -> str:
    text = f"#{a.experiment} {a.status} {fmt(a.metric)}<br>{esc(a.description[:120])}"
    if a.status in FAILED and a.reason:
        text += f"<br>{esc(a.reason[:160])}"
    return text


def metric_figure(record: Record) -> Any:
    """Every attempt as a point, the best-so-far step line, and the holdout score beside it.

    The y-axis is fitted to the best-so-far path so a diverged run (a loss of 1e9) cannot flatten it;
    an attempt beyond the axis is still a point, drawn at the edge as a triangle pointing at where
    it is, its real value in the hover and a legend entry that counts them.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    measured = [a for a in record.attempts if a.metric is not None]
    s = series(record, max(1, len(record.attempts)))
    low_high = bounds_of(s)
    floor = low_high[0] if low_high else 0.0
    bottom, top = -math.inf, math.inf
    if low_high is not None:
        low, high = low_high
        pad = (high - low) * 0.06 or abs(high) * 0.05 or 1.0
        bottom, top = low - pad, high + pad
    inside = [a for a in measured if a.metric is not None and bottom <= a.metric <= top]
    for status in ("discard", "keep", "baseline"):
        points = [a for a in inside if a.status == status]
        if points:
            fig.add_trace(go.Scattergl(
                x=[a.experiment for a in points], y=[a.metric for a in points], mode="markers", name=status,
                marker={"color": COLORS[status], "size": 6 if status == "discard" else 9},
                hovertext=[_hover(a) for a in points], hoverinfo="text"))
    beyond = [a for a in measured if a.metric is not None and not bottom <= a.metric <= top]
    if beyond:
        edge = (top - bottom) * 0.02  # just inside the axis, so the whole marker shows
        above = [a.metric is not None and a.metric > top for a in beyond]
        fig.add_trace(go.Scattergl(
            x=[a.experiment for a in beyond], y=[top - edge if up else bottom + edge for up in above],
            mode="markers", name=f"off the chart ({len(beyond)}), at its edge",
            marker={"color": [COLORS.get(a.status, COLORS["discard"]) for a in beyond], "size": 10,
                    "symbol": ["triangle-up" if up else "triangle-down" for up in above],
                    "line": {"color": "#57606a", "width": 1}},
            hovertext=[f"{_hover(a)}<br>off the chart: {esc(fmt(a.metric))}" for a in beyond], hoverinfo="text"))
    failed = [a for a in record.attempts if a.metric is None]
    if failed:
        fig.add_trace(go.Scattergl(
            x=[a.experiment for a in failed], y=[floor] * len(failed), mode="markers",
            name="no metric (crash, invalid, interrupted)", marker={"color": COLORS["crash"], "symbol": "x", "size": 7},
            hovertext=[_hover(a) for a in failed], hoverinfo="text"))
    path = best_so_far(record)
    if path:
        fig.add_trace(go.Scatter(x=[e for e, _ in path], y=[v for _, v in path], mode="lines", name="best so far",
                                 line={"color": COLORS["keep"], "shape": "hv", "width": 3}, hoverinfo="skip"))
    held = [(a.experiment, h) for a in record.attempts if (h := holdout_value(a)) is not None]
    if held:
        fig.add_trace(go.Scatter(x=[e for e, _ in held], y=[v for _, v in held], mode="lines+markers",
                                 name="holdout (kept states)", line={"color": "#8250df", "dash": "dash"}))
    layout: dict[str, Any] = {"title": f"{esc(record.meta.metric)} by experiment ({record.meta.goal})",
                              "xaxis_title": "experiment", "yaxis_title": esc(record.meta.metric)}
    if low_high is not None:
        layout["yaxis_range"] = [bottom, top]  # the real values stay in the hover of the edge markers
    return _style(fig, **layout)


def failure_figure(record: Record) -> Any:
    """How attempts ended, failures broken down by cause."""
    import plotly.graph_objects as go

    kinds = Counter(failure_kind(a) for a in record.attempts if a.status in FAILED)
    fine = Counter(a.status for a in record.attempts if a.status not in FAILED)
    labels = [*map(esc, fine.keys()), *sorted(kinds, key=lambda k: -kinds[k])]  # plotly draws tags in labels
    values = [*fine.values(), *[kinds[k] for k in labels[len(fine):]]]
    colors = [COLORS.get(label.split(":")[0], "#8c959f") for label in labels]
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", marker={"color": colors}, text=values,
                           textposition="auto"))
    return _style(fig, title="How attempts ended", xaxis_title="attempts", yaxis={"autorange": "reversed"},
                  height=max(260, 40 * len(labels) + 120), showlegend=False)


def cost_figure(record: Record) -> Any:
    """Cumulative agent cost over time (or over experiments when times are missing)."""
    import plotly.graph_objects as go

    times = [_when(a) for a in record.attempts]
    use_time = all(t is not None for t in times) and bool(times)
    x: list[Any] = times if use_time else [a.experiment for a in record.attempts]
    total, cumulative = 0.0, []
    for a in record.attempts:
        total += a.cost_usd
        cumulative.append(total)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=cumulative, mode="lines", name="total cost (USD)", line={"color": "#0969da"},
                             hovertext=[f"#{a.experiment} ${c:.2f}" for a, c in zip(record.attempts, cumulative,
                                                                                   strict=True)],
                             hoverinfo="text"))
    fig.add_trace(go.Bar(x=x, y=[a.cost_usd for a in record.attempts], name="per attempt (USD)",
                         marker={"color": "#8c959f"}, yaxis="y2", opacity=0.6))
    return _style(fig, title="Cost", xaxis_title="time (UTC)" if use_time else "experiment",
                  yaxis_title="total USD", yaxis2={"title": "per attempt", "overlaying": "y", "side": "right"})


def noise(record: Record) -> tuple[float | None, float | None]:
    """(median spread between seeds of one attempt, median size of a kept improvement)."""
    spreads = [statistics.pstdev(v) for a in record.attempts
               if len(v := [x for x in a.seeds.values() if x is not None]) >= 2]
    gains = [abs(d) for a in record.attempts if a.status == "keep" and (d := a.delta) is not None]
    return (statistics.median(spreads) if spreads else None, statistics.median(gains) if gains else None)


def seeds_figure(record: Record) -> Any | None:
    """Each seed's score beside the attempt's mean: how much of a change is noise."""
    import plotly.graph_objects as go

    rows = [(a, [v for v in a.seeds.values() if v is not None]) for a in record.attempts]
    rows = [(a, v) for a, v in rows if len(v) >= 2]
    if not rows:
        return None
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=[a.experiment for a, v in rows for _ in v], y=[x for _, v in rows for x in v],
                               mode="markers", name="one seed", marker={"color": "#8c959f", "size": 5}))
    fig.add_trace(go.Scattergl(x=[a.experiment for a, _ in rows], y=[a.metric for a, _ in rows], mode="markers",
                               name="mean over seeds", marker={"color": "#0969da", "symbol": "line-ew-open",
                                                               "size": 14, "line": {"width": 2}}))
    return _style(fig, title="Seeds and noise", xaxis_title="experiment", yaxis_title=esc(record.meta.metric))


def _style(fig: Any, **layout: Any) -> Any:
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 30, "t": 50, "b": 50},
                      legend={"orientation": "h", "y": -0.2}, height=layout.pop("height", 420), **layout)
    return fig


def _diff_html(patch: str) -> str:
    lines = patch.splitlines()
    shown = lines[:DIFF_LINES]
    out = []
    for line in shown:
        kind = ("add" if line.startswith("+") and not line.startswith("+++") else
                "del" if line.startswith("-") and not line.startswith("---") else
                "hunk" if line.startswith("@@") else "meta" if line.startswith(("diff ", "index ", "+++", "---"))
                else "")
        out.append(f'<span class="{kind}">{esc(line)}</span>' if kind else esc(line))
    if len(lines) > len(shown):
        out.append(f'<span class="meta">… {len(lines) - len(shown)} more lines</span>')
    return "\n".join(out) if out else "(no diff recorded)"


def _cards(record: Record) -> str:
    baseline, best, counts = record.baseline, record.best, record.counts()
    b = baseline.metric if baseline else None
    m = best.metric if best else None
    items = [
        ("baseline", fmt(b)), ("best", fmt(m) + (f" (#{best.experiment})" if best and best.status == "keep" else "")),
        ("change", change(b, m, record.meta.goal)),
        ("experiments", f"{sum(1 for a in record.attempts if a.status != 'baseline')} tried, {counts['keep']} kept, "
                        f"{counts['discard']} discarded, {counts['crash']} crashed, {counts['invalid']} invalid, "
                        f"{counts['interrupted']} interrupted"),
        ("cost", f"${record.total_cost:.2f}"),
        ("status", "paused" if record.paused else (f"stopped: {record.stop_reason}" if record.stop_reason
                                                    else "running")),
    ]
    workers = workers_view.text(record)  # several workers or device slots: their throughput
    if workers:
        items.append(("workers", workers))
    return "".join(f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div></div>'
                   for k, v in items)


def _spent(record: Record) -> bool:
    """Whether any attempt cost money: a loop that cost nothing gets a sentence, not an empty chart."""
    return any(a.cost_usd for a in record.attempts)


def _noise_note(record: Record) -> str:
    spread, gain = noise(record)
    if spread is None:
        return ("<p>Each attempt ran one seed, so the noise between runs is unknown: add seeds "
                "(<code>evaluate.seeds</code>) to tell a real gain from luck.</p>")
    text = f"<p>Typical spread between seeds of one attempt (median standard deviation): <b>{spread:.4g}</b>."
    if gain is not None:
        ratio = gain / spread if spread else float("inf")
        verdict = ("well above the noise" if ratio >= 3 else "close to the noise: check keeps with more seeds"
                   if ratio >= 1 else "below the noise: keeps may be luck")
        text += f" Typical kept improvement: <b>{gain:.4g}</b>, {ratio:.1f}× the spread ({verdict})."
    return text + "</p>"


def _failures_table(record: Record) -> str:
    failed = [a for a in record.attempts if a.status in FAILED][-50:]
    if not failed:
        return "<p>No attempt failed.</p>"
    rows = "".join(f"<tr><td>{a.experiment}</td><td>{esc(failure_kind(a))}</td><td>{esc(a.description)}</td>"
                   f"<td>{esc(a.reason)}</td></tr>" for a in reversed(failed))
    return ("<details><summary>The latest failures and their reasons</summary><table><tr><th>#</th><th>cause</th>"
            f"<th>description</th><th>reason</th></tr>{rows}</table></details>")


def _kept_section(record: Record, diff: Differ | None) -> str:
    kept = [a for a in record.attempts if a.status == "keep"]
    if not kept:
        return "<p>No experiment has been kept yet.</p>"
    parts = []
    for a in reversed(kept[-KEPT_DIFFS:]):
        delta = f"{a.delta:+.4g}" if a.delta is not None else ""
        body = f'<pre class="diff">{_diff_html(diff(a.experiment))}</pre>' if diff else ""
        if guards.summary(a):  # the guards it passed, their values, the checks' time apart from evaluation's
            body = (f"<p class='guards'>guards: {esc(guards.summary(a))} (checks {esc(a.extra.get('guard_s', 0))}s, "
                    f"evaluation {a.eval_s:.1f}s)</p>{body}")
        parts.append(f"<details><summary><b>#{a.experiment}</b> {esc(fmt(a.metric))} <span class='delta'>{delta}"
                     f"</span> {esc(a.description)} <code>{esc((a.sha or '')[:8])}</code></summary>{body}</details>")
    if len(kept) > KEPT_DIFFS:
        parts.append(f"<p>…and {len(kept) - KEPT_DIFFS} earlier keeps: "
                     f"<code>arl-bot results --loop {esc(record.meta.loop)}</code></p>")
    return "\n".join(parts)


def _attempts_table(record: Record) -> str:
    rows = "".join(
        f'<tr class="{esc(a.status)}"><td>{a.experiment}</td><td><span class="mark {esc(a.status)}"></span>'
        f'{esc(a.status)}</td>'
        f"<td>{esc(fmt(a.metric))}</td><td>{'' if a.delta is None or a.status == 'baseline' else f'{a.delta:+.4g}'}"
        f"</td><td>{esc(a.description)}</td><td>{esc(a.reason) if a.status in FAILED else ''}</td>"
        f"<td>${a.cost_usd:.2f}</td></tr>" for a in reversed(record.attempts[-LATEST_ROWS:]))
    return ("<table><tr><th>#</th><th>status</th><th>metric</th><th>Δ</th><th>description</th><th>why</th>"
            f"<th>cost</th></tr>{rows}</table>")


CSS = """
body{font:14px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
.sub{color:#59636e;margin-bottom:16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:8px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px 12px}
.k{color:#59636e;font-size:12px}.v{font-size:16px;font-weight:600}
.chart{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:8px 0;padding:4px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
td,th{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
tr.keep td{background:#dafbe1} tr.crash td,tr.invalid td{background:#fff8f8}
details{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:4px 0;padding:4px 8px}
summary{cursor:pointer} .delta{color:#1a7f37;font-family:monospace}
pre.diff{font:12px/1.4 ui-monospace,monospace;overflow-x:auto;margin:6px 0;white-space:pre}
.mark{display:inline-block;width:.7em;height:.7em;border-radius:50%;margin-right:.4em;background:#8c959f}
.mark.baseline{background:#0969da}.mark.keep{background:#1a7f37}.mark.crash{background:#cf222e}
.mark.invalid{background:#bf8700;border-radius:0}.mark.interrupted{background:#8250df;border-radius:0}
.add{color:#116329;background:#dafbe1}.del{color:#82071e;background:#ffebe9}.hunk{color:#0550ae}.meta{color:#59636e}
"""


def build_report(record: Record, diff: Differ | None = None) -> str:
    """The report as one HTML string with plotly's JavaScript inlined."""
    from plotly.offline import get_plotlyjs

    config = {"displaylogo": False, "responsive": True}

    def chart(fig: Any, div_id: str) -> str:
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=config)
        return f'<div class="chart">{div}</div>'

    meta = record.meta
    seeds = seeds_figure(record)
    sections = [
        f"<h1>autoresearch: {esc(meta.loop)}</h1>",
        f'<div class="sub">{esc(meta.metric)} ({esc(meta.goal)}) · base {esc(meta.base_branch)}@'
        f"{esc(meta.base_sha[:8])} · started {esc(meta.created_at[:19])} UTC · "
        f"generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC</div>",
        f'<div class="cards">{_cards(record)}</div>',
        "<h2>Progress</h2>", chart(metric_figure(record), "metric"),
        "<h2>Kept experiments</h2>", _kept_section(record, diff),
        "<h2>Why attempts failed</h2>", chart(failure_figure(record), "failures"), _failures_table(record),
        "<h2>Cost</h2>", chart(cost_figure(record), "cost") if _spent(record) else
        "<p>No attempt cost anything: the agent reported no spend (a command or optuna agent, or a dry run).</p>",
        "<h2>Seeds and noise</h2>", _noise_note(record), chart(seeds, "seeds") if seeds is not None else "",
        f"<h2>Attempts</h2><p>The latest {min(LATEST_ROWS, len(record.attempts))} of {len(record.attempts)}, "
        "newest first.</p>", _attempts_table(record),
    ]
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>autoresearch: {esc(meta.loop)}'
            f'</title><meta name="viewport" content="width=device-width"><style>{CSS}</style>'
            f'<script type="text/javascript">{get_plotlyjs()}</script></head>\n<body><main>\n'
            + "\n".join(sections) + "\n</main></body></html>\n")


def write_report(record: Record, path: Path, diff: Differ | None = None) -> Path:
    """Write the report to path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(record, diff), encoding="utf-8")
    return path
