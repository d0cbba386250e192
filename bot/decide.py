"""Pure decisions: whether a run should stop (the keep rule is bot/noise.py's)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Budget, Metric
from .record import Status


@dataclass
class RunState:
    """Counters of the current run (budgets count per run, not over the loop's life)."""

    experiments: int = 0
    cost_usd: float = 0.0
    dearest_usd: float = 0.0  # the most expensive experiment of this run: what the next one may cost
    since_keep: int = 0  # consecutive attempts without a keep
    crashes: int = 0  # consecutive crashes
    elapsed_s: float = 0.0
    capped_at: int | None = None  # an experiment whose agent the cost cap stopped: nothing is left to spend

    def count(self, status: Status, cost_usd: float, *, capped: int | None = None) -> None:
        """Update the counters after one attempt (capped: its number, when the cost cap stopped its agent)."""
        self.capped_at = capped if capped is not None else self.capped_at
        self.experiments += 1
        self.cost_usd += cost_usd
        self.dearest_usd = max(self.dearest_usd, cost_usd)
        self.since_keep = 0 if status == "keep" else self.since_keep + 1
        self.crashes = self.crashes + 1 if status == "crash" else 0


def stop_reason(
    budget: Budget, metric: Metric, state: RunState, best: float | None, max_experiments: int | None
) -> str | None:
    """Why the run must stop before its next experiment, or None to go on."""
    limit = max_experiments if max_experiments is not None else budget.experiments
    if limit is not None and state.experiments >= limit:
        return f"experiments: ran {state.experiments} of {limit}"
    if budget.target is not None and best is not None and metric.at_least(best, budget.target):
        return f"target: best {metric.name} {best:.6g} reached {budget.target:g}"
    if budget.hours is not None and state.elapsed_s >= budget.hours * 3600:
        return f"hours: {state.elapsed_s / 3600:.2f} h of {budget.hours:g} h used"
    if budget.cost_usd is not None and state.cost_usd >= budget.cost_usd:
        return f"cost: {usd(state.cost_usd)} of {usd(budget.cost_usd)} spent"
    if budget.cost_usd is not None and state.cost_usd + state.dearest_usd > budget.cost_usd:
        # Stop before an experiment the budget cannot afford, not halfway through it.
        return (f"cost: {usd(state.cost_usd)} of {usd(budget.cost_usd)} spent; the next experiment could "
                f"cost {usd(state.dearest_usd)} (the dearest so far)")
    if budget.cost_usd is not None and state.capped_at is not None:
        # The agent stopped before a call the rest of the cap could not pay for: so would the next one.
        return (f"cost: {usd(state.cost_usd)} of {usd(budget.cost_usd)} spent; experiment {state.capped_at}'s "
                "agent stopped at the cap, what is left cannot pay for another call")
    if budget.plateau is not None and state.since_keep >= budget.plateau:
        return f"plateau: {state.since_keep} experiments without a keep"
    if budget.crashes is not None and state.crashes >= budget.crashes:
        return f"crashes: {state.crashes} crashes in a row"
    return None


def usd(amount: float) -> str:
    """Dollars with cents, or with four decimals below a dollar (a test's or a cheap model's costs)."""
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}"
