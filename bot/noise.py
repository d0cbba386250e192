"""Pure statistics of a noisy metric: run-to-run noise, the keep rules, and the short-circuit test."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

RULES = ("mean", "sigma", "welch")


@dataclass(frozen=True)
class Decision:
    """A keep rule's verdict on one measured candidate."""

    keep: bool
    reason: str
    rule: str
    improvement: float  # candidate mean beats best mean by this much, in the goal's direction
    threshold: float  # what the improvement had to exceed (mean, sigma) or 0.0 (welch: a confidence)
    confidence: float | None  # P(the candidate is truly better), when the noise is known

    def as_dict(self) -> dict[str, object]:
        """What the record stores under `extra["keep"]`."""
        return {"rule": self.rule, "keep": self.keep, "improvement": self.improvement,
                "threshold": self.threshold, "confidence": self.confidence}


def sigma(values: Sequence[float]) -> float | None:
    """Run-to-run noise of one evaluation: the sample standard deviation of repeated runs (None below 2)."""
    finite = [v for v in values if math.isfinite(v)]
    return math.sqrt(variance(finite)) if len(finite) >= 2 else None


# Metrics are any finite floats, ±1.7e308 included: their sums, differences and squares can pass
# float's range, where the statistics module raises OverflowError. These helpers answer inf instead,
# which every comparison below handles, and which the record writes as "inf" (bot/record.py dumps).
_SCALE = 2.0 ** -600  # exact (a power of two): values near float's limits scaled into a safe range


def mean(values: Sequence[float]) -> float:
    """The mean of finite values, even when their sum overflows (statistics.fmean raises)."""
    try:
        return statistics.fmean(values)
    except OverflowError:
        return math.fsum(v / len(values) for v in values)


def variance(values: Sequence[float]) -> float:
    """The sample variance of two or more finite values; inf when it is beyond float's range."""
    try:
        return statistics.variance(values)
    except OverflowError:
        return statistics.variance([v * _SCALE for v in values]) / _SCALE / _SCALE  # inf past the range


def sign(goal: str) -> float:
    """-1 where lower is better (minimize), +1 where higher is: `sign * value` grows as value improves.

    The one place a goal's direction is decided; every comparison in the goal's direction goes through it.
    """
    return -1.0 if goal == "minimize" else 1.0


def better_end(goal: str) -> str:
    """Which end of the scale is better, in a word: "lower" or "higher"."""
    return "lower" if sign(goal) < 0 else "higher"


def gain(goal: str, candidate: float, best: float) -> float:
    """How much candidate beats best in the goal's direction (negative: worse; ±inf past float's range)."""
    return sign(goal) * (candidate - best)


def normal_cdf(z: float) -> float:
    """P(Z <= z) for a standard normal Z."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df degrees of freedom (df may be fractional, as Welch's is)."""
    if df <= 0 or math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The continued fraction converges fast only for x < (a+1)/(a+b+2); use the symmetry otherwise.
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _incomplete_beta(b, a, 1.0 - x)
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-12:
            break
    return math.exp(log_front) * f / a


def confidence_better(goal: str, candidate: Sequence[float], best: Sequence[float], noise: float | None,
                      min_delta: float = 0.0) -> float | None:
    """One-sided Welch test: P(the candidate's true mean beats the best's by more than min_delta).

    A side with one value borrows the baseline's noise estimate for its variance; with neither a
    second value nor a noise estimate there is nothing to test and the answer is None.
    """
    if not candidate or not best:
        return None
    var_a = _variance(candidate, noise)
    var_b = _variance(best, noise)
    if var_a is None or var_b is None:
        return None
    n_a, n_b = len(candidate), len(best)
    diff = gain(goal, mean(candidate), mean(best)) - min_delta
    se2 = var_a / n_a + var_b / n_b
    if se2 <= 0.0:  # a deterministic evaluation: the difference is exact
        return 1.0 if diff > 0 else 0.0
    if math.isinf(se2):  # noise beyond float's range: no difference can be told from it
        return 0.5
    t = diff / math.sqrt(se2)
    # Welch-Satterthwaite degrees of freedom; a borrowed variance counts as well known (many runs).
    parts = [(var_a / n_a, n_a - 1 if n_a > 1 else 1_000), (var_b / n_b, n_b - 1 if n_b > 1 else 1_000)]
    denominator = sum(p * p / dof for p, dof in parts if p > 0)
    df = se2 * se2 / denominator if denominator > 0 else 1_000.0
    return t_cdf(t, df)


def _variance(values: Sequence[float], noise: float | None) -> float | None:
    if len(values) >= 2:
        return variance(values)
    return noise * noise if noise is not None else None


def judge(rule: str, goal: str, metric: str, candidate: Sequence[float], best: Sequence[float], *,
          noise: float | None, min_delta: float = 0.0, k: float = 2.0, level: float = 0.95) -> Decision:
    """Keep or discard a candidate measured on seeds against the best state's per-seed values.

    mean:  the mean beats the best's by more than min_delta (noise-blind).
    sigma: the mean beats the best's by more than max(min_delta, k * sigma), sigma the run-to-run noise.
    welch: a one-sided Welch test across seeds is at least `level` sure the candidate is better.
    """
    mean_c, mean_b = mean(candidate), mean(best)
    improvement = gain(goal, mean_c, mean_b)
    confidence = confidence_better(goal, candidate, best, noise, min_delta)
    head = f"{metric} {mean_c:.6g} vs best {mean_b:.6g}"
    conf = "" if confidence is None else f", confidence {confidence:.1%}"
    if rule == "sigma" and noise is not None:
        threshold = max(min_delta, k * noise)
        keep = improvement > threshold
        verb = "beats" if keep else "does not beat"
        reason = f"{head}: gain {improvement:.4g} {verb} {k:g}σ = {threshold:.4g} (σ {noise:.4g}){conf}"
        return Decision(keep, reason, rule, improvement, threshold, confidence)
    if rule == "welch" and confidence is not None:
        keep = confidence >= level and improvement > min_delta
        verb = "reaches" if keep else "is below"
        reason = f"{head}: Welch test confidence {confidence:.1%} {verb} {level:.0%} (gain {improvement:.4g})"
        return Decision(keep, reason, rule, improvement, 0.0, confidence)
    # mean, or a noise-aware rule that has no noise estimate to work with yet
    keep = improvement > min_delta
    fallback = "" if rule == "mean" else f" ({rule} rule without a noise estimate: compared means)"
    margin = f" by more than {min_delta:g}" if min_delta else ""
    verb = "beats" if keep else "does not beat"
    reason = f"{metric} {mean_c:.6g} {verb} {mean_b:.6g}{margin}{conf}{fallback}"
    return Decision(keep, reason, rule, improvement, min_delta, confidence)


def clearly_worse(goal: str, first: float, best: Sequence[float], noise: float | None, sigmas: float) -> bool:
    """Whether one seed's value is already worse than the best's mean by more than `sigmas` * sigma.

    Without a noise estimate nothing is clearly worse: the remaining seeds run.
    """
    if not best or noise is None:
        return False
    return -gain(goal, first, mean(best)) > sigmas * noise


def baseline_advice(rule: str, runs: int, noise: float | None, min_delta: float, k: float = 2.0) -> str | None:
    """What to change when the baseline's own spread is larger than the gains the loop is asked to find.

    Under `keep: mean` a change that does nothing beats a noisy best about half the time, so a loop
    whose noise passes min_delta keeps luck. The noise-aware rules set their threshold from sigma: no advice.
    """
    fix = ("`keep: {rule: sigma, k: 2}` with `seeds: [1, 2, 3]` and `baseline_repeats: 2` "
           "(docs/measurement.md: Seeds and noise, Keep rules)")
    if rule != "mean":
        return None
    if noise is None:
        return (f"the baseline was measured {runs} time{'s' if runs != 1 else ''}, so its noise is unknown and "
                f"`keep: mean` cannot tell a gain from luck; if the evaluation is not exactly repeatable, use {fix}")
    if noise > min_delta:
        return (f"the baseline's own spread (σ {noise:.4g} over {runs} runs) is larger than the gains the loop is "
                f"asked to find (min_delta {min_delta:g}): under `keep: mean` a change that does nothing is kept "
                f"about half the time; use `keep: {{rule: sigma, k: {k:g}}}` (keeps gains above {k * noise:.4g}), "
                f"or raise metric.min_delta above {k * noise:.4g}")
    return None
