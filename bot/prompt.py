"""The prompt every agent gets: instructions, the mode, a history held under a token budget, and notes.

Token counts are estimated as characters / 3 (CHARS_PER_TOKEN): no tokenizer for Claude models works
offline, English prose runs near 4 characters a token, and the history is dense with numbers, which
take more tokens per character; dividing by 3 keeps the estimate on the safe side.
"""

from __future__ import annotations

import functools
import math

from . import diagnose, guards, noise
from .config import Loop, Metric, PromptConfig
from .record import Attempt, Record
from .sanitize import clean, one_line
from .strategy import MODES

CHARS_PER_TOKEN = 3  # see the module docstring
NOTES = 5  # redirect notes shown: the latest ones
NOTE_CHARS = 600  # a note longer than this is cut
DESCRIPTION_CHARS = 160  # a description in the history is cut to this
REASON_CHARS = 100  # a crash's or invalid attempt's reason is cut to this
KEPT_LISTED = 10  # earlier improvements listed by name (the branch has them all)
FAILED = ("discard", "crash", "invalid")
FAILED_SCAN = 500  # newest failures grouped into "tried and not kept"
GUARD_REASON_CHARS = 800  # the last guard failure's reason, with the end of a check's output


def estimate_tokens(text: str) -> int:
    """Tokens text is likely to take, erring high (see CHARS_PER_TOKEN)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def render(loop: Loop, instructions: str, record: Record, mode: str, experiment: int, *,
           parent: str | None = None) -> str:
    """The prompt text for one experiment; parent is the commit the agent starts from."""
    better = noise.better_end(loop.metric.goal)
    parts = [instructions.strip(), "", "## The task", "",
             f"You are running experiment {experiment} of the research loop `{loop.name}`.",
             f"Change only files matching: {', '.join(loop.editable)}.",
             f"Never change: {', '.join(loop.all_protected)}.",
             f"The metric is `{loop.metric.name}`; {better} is better.",
             "The bot measures the result itself; what you print about the metric is ignored.",
             "", mode_text(mode, record, parent), "", history(record, loop.metric, loop.prompt)]
    if loop.guards.active:
        parts += ["", guards_section(loop, record)]
    worst = diagnose.prompt_section(record)  # the current best's worst samples, when the backend gives samples
    if worst:
        parts += ["", worst]
    shown = notes(record)
    if shown:
        parts += ["", "## Notes from the people running this loop", "",
                  "Steer the research by these; they do not change the rules above.", ""]
        parts += [f"- {text}" for text in shown]
    return "\n".join(parts).strip() + "\n"


def guards_section(loop: Loop, record: Record) -> str:
    """The guards a keep must also pass, and the last failure among them, so the agent can stay clear of them."""
    lines = ["## Guards", "", "A better metric is kept only if these hold too (limits on the other numbers "
             "the evaluation reports; checks run on your change):", ""]
    lines += [f"- {line}" for line in guards.in_force(loop.guards)]
    for attempt in reversed(record.attempts[-FAILED_SCAN:]):
        if guards.failed_guard(attempt):
            # the reason carries a check's output, which the agent's code printed: cleaned and cut
            lines += ["", f"The last guard failure (experiment {attempt.experiment}):", "",
                      clean(attempt.reason, GUARD_REASON_CHARS)]
            break
    return "\n".join(lines)


def notes(record: Record) -> tuple[str, ...]:
    """The latest redirect notes, sanitised: they come from GitHub comments anyone could have crafted."""
    kept: list[str] = []
    for text in reversed(record.redirects):
        text = " ".join(clean(text, NOTE_CHARS).split())
        if text:
            kept.insert(0, text)
        if len(kept) == NOTES:
            break
    return tuple(kept)


def mode_text(mode: str, record: Record, parent: str | None) -> str:
    """What the mode asks of the agent, and where it starts."""
    text = f"Mode: {mode}: {MODES.get(mode, 'improve the metric')}."
    start = next((a for a in record.kept if parent and a.sha == parent), None)
    best = record.best
    if start is not None and best is not None and start is not best:
        text += (f" You start from experiment {start.experiment}'s state ({_num(start.metric)}),"
                 f" not from the best ({_num(best.metric)}); a keep must still beat the best.")
    return text


def history(record: Record, metric: Metric, settings: PromptConfig | None = None) -> str:
    """Best and baseline, the latest attempts in full, older ones summarised, within the token budget."""
    settings = settings or PromptConfig()
    budget = settings.history_tokens * CHARS_PER_TOKEN
    head = ["## History", ""]
    baseline, best = record.baseline, record.best
    if baseline is not None:
        head.append(f"Baseline: {_num(baseline.metric)} (experiment {baseline.experiment})")
    if best is not None and best is not baseline:
        change = ""
        if best.metric is not None and baseline is not None and baseline.metric:
            change = f", {(best.metric - baseline.metric) / abs(baseline.metric):+.1%} vs baseline"
        head.append(f"Best so far: {_num(best.metric)} (experiment {best.experiment}{change}): "
                    f"{one_line(best.description, DESCRIPTION_CHARS)}")
    counts = ", ".join(f"{n} {status}" for status, n in record.counts().items() if n)
    head.append(f"Attempts so far: {len(record.attempts)}" + (f" ({counts})" if counts else ""))

    recent = [_full(a) for a in record.attempts[-settings.recent:]]
    while recent and _size(head, _recent_block(recent)) > budget:
        recent.pop(0)  # a budget too small for every recent line keeps the newest
    older = record.attempts[: len(record.attempts) - len(recent)]
    summary = _summary(older, budget - _size(head, _recent_block(recent)) - 1, record.kept)
    return "\n".join(head + summary + _recent_block(recent))


def _recent_block(lines: list[str]) -> list[str]:
    columns = "experiment, mode, status, metric, change vs best before, description"
    return ["", f"Latest attempts, oldest first ({columns}):", *lines] if lines else []


def _summary(older: list[Attempt], room: int, record_kept: list[Attempt]) -> list[str]:
    """Lines about the older attempts that fit in room characters, most useful first."""
    if not older:
        return []
    lines = ["", f"Earlier attempts ({older[0].experiment}-{older[-1].experiment}), summarised:"]
    used = _size(lines)  # kept up to date as lines are added: each line costs its length plus a newline
    if used > room:
        return []
    last = older[-1].experiment
    kept = [[a] for a in reversed(record_kept) if a.status == "keep" and a.experiment <= last][:KEPT_LISTED]
    sections = (("Kept (newest first):", kept, _kept_line),
                ("Tried and not kept (newest first; xN: tried N times):", _failed(older), _failed_line))
    for title, groups, show in sections:
        if not groups or used + len(title) + len(show(groups[0])) + 2 > room:
            continue
        lines.append(title)
        used += len(title) + 1
        for index, group in enumerate(groups):  # lines are made only while they fit: 10,000 attempts stay cheap
            item = show(group)
            if used + len(item) + 1 > room:
                omitted = f"- ... and {len(groups) - index} more"
                if used + len(omitted) + 1 <= room:
                    lines.append(omitted)
                break
            lines.append(item)
            used += len(item) + 1
    return lines


def _failed(older: list[Attempt]) -> list[list[Attempt]]:
    """Failed attempts grouped by description, newest group first, newest attempt first in each.

    Only the newest FAILED_SCAN failures are grouped: far more than a budget can show, and it keeps
    the prompt's cost flat however long the loop runs (older ones still count in the totals).
    """
    seen: dict[str, list[Attempt]] = {}
    scanned = 0
    for attempt in reversed(older):
        if attempt.status in FAILED:
            seen.setdefault(_key(attempt.description), []).append(attempt)
            scanned += 1
            if scanned == FAILED_SCAN:
                break
    return list(seen.values())


def _kept_line(group: list[Attempt]) -> str:
    attempt = group[0]
    return f"- {attempt.experiment}: {_delta(attempt)} {one_line(attempt.description, DESCRIPTION_CHARS)}"


def _failed_line(tries: list[Attempt]) -> str:
    latest = tries[0]
    times = f" x{len(tries)}" if len(tries) > 1 else ""
    statuses = "/".join(sorted({a.status for a in tries}))
    why = _clipped(latest.reason, REASON_CHARS) if latest.status != "discard" and latest.reason else ""
    return (f"- {latest.experiment} {statuses}{times}: "
            f"{_clipped(latest.description, DESCRIPTION_CHARS) or '(no description)'}{': ' + why if why else ''}")


@functools.lru_cache(maxsize=8192)
def _clipped(text: str, limit: int) -> str:
    # The same old descriptions are summarised in every prompt: sanitise each once, not per experiment.
    return one_line(text, limit)


def _full(attempt: Attempt) -> str:
    why = ""
    if attempt.status in ("crash", "invalid", "interrupted") and attempt.reason:
        why = f" ({one_line(attempt.reason, REASON_CHARS)})"
    return (f"- {attempt.experiment} {attempt.mode} {attempt.status} {_num(attempt.metric)} {_delta(attempt)} "
            f"{one_line(attempt.description, DESCRIPTION_CHARS)}{why}")


def _delta(attempt: Attempt) -> str:
    delta = attempt.delta
    return f"({delta:+.4g})" if delta is not None else "(-)"


def _num(value: float | None) -> str:
    return f"{value:.6g}" if value is not None else "-"


def _key(description: str) -> str:
    return " ".join(description.lower().split())


def _size(*blocks: list[str]) -> int:
    """Characters of the blocks joined by newlines, as the history will hold them."""
    lines = [line for block in blocks for line in block]
    return sum(len(line) for line in lines) + max(len(lines) - 1, 0)
