"""The PR body's measurement facts: keep rule, noise, confidence, short-circuit savings, validation beside holdout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .noise import baseline_advice, gain
from .record import Attempt, Record

HOLDOUT_ROWS = 10  # kept states shown beside their holdout score


@dataclass(frozen=True)
class Divergence:
    """Validation got better since the baseline while the holdout got worse."""

    validation_gain: float
    holdout_gain: float
    experiment: int

    def message(self, metric: str) -> str:
        """The warning people read."""
        return (f"Validation {metric} improved by {self.validation_gain:.4g} since the baseline, but the holdout "
                f"got worse by {-self.holdout_gain:.4g} (best: experiment {self.experiment}). The loop may be "
                "overfitting the validation set: review the kept changes before merging.")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def holdout_value(attempt: Attempt) -> float | None:
    """An attempt's holdout score, when it was measured."""
    return _number(attempt.extra.get("holdout", {}).get("metric"))


def end_holdout(record: Record) -> dict[str, Any]:
    """The holdout measured at the end of the latest run that measured one."""
    for note in reversed(record.notes):
        data = note.data.get("holdout") if note.kind == "run_end" else None
        if isinstance(data, dict):
            return data
    return {}


def best_holdout(record: Record) -> float | None:
    """The holdout score of the current best: from its own measurement or the end of a run."""
    best = record.best
    if best is None:
        return None
    value = holdout_value(best)
    end = end_holdout(record)
    if value is None and end.get("experiment") == best.experiment:
        value = _number(end.get("metric"))
    return value


def divergence(record: Record) -> Divergence | None:
    """Whether validation and holdout disagree on the direction of the change since the baseline.

    The holdout's own seed noise (when it has several seeds) is the tolerance: a holdout that moved
    by less than its noise has not really got worse.
    """
    baseline, best = record.baseline, record.best
    if baseline is None or best is None or best is baseline or baseline.metric is None or best.metric is None:
        return None
    base_holdout, now_holdout = holdout_value(baseline), best_holdout(record)
    if base_holdout is None or now_holdout is None:
        return None
    goal = record.meta.goal
    validation_gain = gain(goal, best.metric, baseline.metric)
    holdout_gain = gain(goal, now_holdout, base_holdout)
    tolerance = _number(baseline.extra.get("holdout", {}).get("sigma")) or 0.0
    if validation_gain > 0 and holdout_gain < -tolerance:
        return Divergence(validation_gain, holdout_gain, best.experiment)
    return None


def section(record: Record) -> list[str]:
    """Markdown lines for the PR body; empty when the loop measures the plain way (one seed, `mean`)."""
    facts = _facts(record)
    holdout = _holdout_table(record)
    if not facts and not holdout:
        return []
    out = ["", "### Measurement", ""]
    warning = divergence(record)
    if warning is not None:
        out += [f"> [!WARNING]\n> {warning.message(record.meta.metric)}", ""]
    advice = _noise_advice(record)
    if advice:  # the same words the console printed at the baseline
        out += [f"> [!WARNING]\n> {advice[0].upper()}{advice[1:]}.", ""]
    if facts:
        out += ["| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in facts]]
    if holdout:
        out += ["", "Validation (what the agent optimises) beside holdout (never shown to it):", "", *holdout]
    return out


class _Seen:
    """The latest decision and noise estimate, and short-circuit totals, folded over the attempts."""

    def __init__(self) -> None:
        self.last: Attempt | None = None
        self.noisy: Attempt | None = None
        self.cut = 0
        self.cut_runs = 0
        self.saved_s = 0.0

    def add(self, attempt: Attempt) -> None:
        """Take one more attempt into account."""
        if isinstance(attempt.extra.get("keep"), dict):
            self.last = attempt
        if isinstance(attempt.extra.get("noise"), dict):
            self.noisy = attempt
        if attempt.extra.get("skipped_seeds"):
            self.cut += 1
            self.cut_runs += len(attempt.extra["skipped_seeds"])
            self.saved_s += _number(attempt.extra.get("saved_eval_s")) or 0.0


def _noise_advice(record: Record) -> str | None:
    """noise.baseline_advice for the latest keep decision (its rule, its threshold: min_delta under mean)."""
    seen = record.fold("measurement_view", _Seen, _Seen.add)
    if seen.last is None or seen.noisy is None:
        return None
    keep, measured = seen.last.extra["keep"], seen.noisy.extra["noise"]
    sigma, threshold = _number(measured.get("sigma")), _number(keep.get("threshold"))
    if sigma is None or threshold is None:
        return None
    runs = sum(len(r) for r in measured.get("runs", []) if isinstance(r, list))
    return baseline_advice(str(keep.get("rule")), runs, sigma, threshold)


def _facts(record: Record) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = []
    seen = record.fold("measurement_view", _Seen, _Seen.add)
    last, noisy = seen.last, seen.noisy
    if last is not None:
        keep = last.extra["keep"]
        facts.append(("keep rule", _rule_text(keep)))
    if noisy is not None and _number(noisy.extra["noise"].get("sigma")) is not None:
        runs = sum(len(r) for r in noisy.extra["noise"].get("runs", []))
        facts.append(("noise σ", f"{noisy.extra['noise']['sigma']:.4g} (from {runs} baseline runs, "
                                 f"experiment {noisy.experiment})"))
    if last is not None:
        keep = last.extra["keep"]
        conf = _number(keep.get("confidence"))
        confidence = f", confidence it is better {conf:.1%}" if conf is not None else ""
        gained = _number(keep.get("improvement"))
        facts.append(("last decision", f"experiment {last.experiment}: {last.status}"
                      + (f", gain {gained:.4g}" if gained is not None else "") + confidence))
    cut = seen.cut
    if cut:
        facts.append(("short-circuit", f"{seen.cut_runs} seed runs skipped in {cut} clearly worse attempts "
                                       f"(~{seen.saved_s:.0f} s of evaluation saved)"))
    plain = (last is None or last.extra["keep"].get("rule") == "mean") and len(facts) <= 2 and not cut \
        and not any(k == "noise σ" for k, _ in facts)
    return [] if plain else facts


def _rule_text(keep: dict[str, Any]) -> str:
    rule = str(keep.get("rule", "mean"))
    threshold = _number(keep.get("threshold"))
    if rule == "sigma" and threshold is not None:
        return f"`sigma`: a change must beat the best by more than k·σ = {threshold:.4g}"
    if rule == "welch":
        return "`welch`: a one-sided Welch test across seeds must be sure enough the change is better"
    return "`mean`: the mean over seeds must beat the best" + (
        f" by more than {threshold:g}" if threshold else "")


def _holdout_table(record: Record) -> list[str]:
    kept = [a for a in record.kept if "holdout" in a.extra][-HOLDOUT_ROWS:]
    end = end_holdout(record)
    if not kept and not end:
        return []
    goal = record.meta.goal
    rows = ["| # | validation | holdout |", "| --- | --- | --- |"]
    previous: Attempt | None = None
    for attempt in kept:
        value = holdout_value(attempt)
        flag = ""
        if previous is not None and value is not None and attempt.metric is not None:
            before_h, before_v = holdout_value(previous), previous.metric
            if before_h is not None and before_v is not None and gain(goal, attempt.metric, before_v) > 0 \
                    and gain(goal, value, before_h) < 0:
                flag = " ⚠️ holdout worse"
        error = attempt.extra["holdout"].get("error")
        shown = f"{value:.6g}" if value is not None else f"failed: {str(error)[:60]}"
        label = f"{attempt.experiment} {attempt.status}"
        rows.append(f"| {label} | {_fmt(attempt.metric)} | {shown}{flag} |")
        previous = attempt
    if end and _number(end.get("metric")) is not None:
        rows.append(f"| end of run (best: {end.get('experiment')}) | | {float(end['metric']):.6g} |")
    return rows


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"
