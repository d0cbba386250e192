"""Experiments in flight: throughput and device-busy fraction for workers by device slots.

Usage: python -m benchmarks.throughput [--agent-s 0.5] [--eval-s 0.5] [--experiments 16]
       [--workers 1 2 4 8] [--slots 1 2 4]
The agent sleeps A s (it holds no device); the evaluation sleeps E s holding a device slot; every change
is discarded, so no keep is re-measured and the figure is the loop's own pipelining. Sleeps, not CPU work:
the figures say how well the scheduler overlaps phases, not how fast this machine computes.
Prints a table and writes benchmarks/results/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from arl_bot import config
from arl_bot.agents import Agent, AgentResult, AgentTask
from arl_bot.evaluate import Evaluator, SeedResult
from arl_bot.git import Git
from arl_bot.loop import RunOptions, Session
from arl_bot.record import Attempt
from arl_bot.runview import Listener, RunView
from arl_bot.sandbox import get_sandbox

from benchmarks.synth import make_repo

RESULTS = Path(__file__).with_name("results")
TARGET_BUSY = 0.90  # 2 workers on 1 slot with A = E keep the slot this busy (1 worker: 50%)
TARGET_SPEEDUP = 3.6  # 8 workers on 4 slots against 1 worker on 1 slot


class SleepAgent(Agent):
    """Thinks for A seconds (no device), then makes the model worse: every attempt is a discard."""

    kind = "bench"
    seconds = 0.5

    def propose(self, task: AgentTask) -> AgentResult:
        """Sleep, then write a worse value."""
        time.sleep(self.seconds)
        path = task.tree / "model" / "value.txt"
        path.write_text(f"{float(path.read_text()) + 1000 + task.experiment}\n")
        return AgentResult(description=f"sleep {task.experiment}")


class SleepEvaluator(Evaluator):
    """Evaluates for E seconds while holding its device slot."""

    seconds = 0.5

    def evaluate(self, tree: Path, seed: int, scratch: Path) -> SeedResult:
        """Sleep, then read the value."""
        time.sleep(self.seconds)
        return SeedResult(seed, float((tree / "model" / "value.txt").read_text()))


class Clock(Listener):
    """Starts when the baseline is recorded; each later attempt is a lap."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.laps: list[float] = []
        self.busy_at_start = 0.0
        self.session: Session | None = None

    def on_attempt(self, run: RunView, attempt: Attempt) -> None:
        """Take the lap (the baseline starts the clock and the slot-busy count)."""
        now = time.monotonic()
        if attempt.status == "baseline":
            assert self.session is not None
            self.start = now
            self.busy_at_start = sum(self.session.slots.busy_s)
        else:
            self.laps.append(now)


def measure(workers: int, slots: int, experiments: int, agent_s: float, eval_s: float) -> dict[str, float]:
    """One run: experiments per hour and how busy the slots were, from the baseline to the last record."""
    with tempfile.TemporaryDirectory(prefix="arl-bench-throughput-") as scratch:
        root = make_repo(Path(scratch) / "lab")
        text = (root / ".autoresearch.yml").read_text()
        text = text.rstrip("\n") + f"\n    workers: {workers}\n    devices: {list(range(slots))}\n"
        (root / ".autoresearch.yml").write_text(text)
        cfg = config.parse(text)
        loop = cfg.loop("bench")
        SleepAgent.seconds, SleepEvaluator.seconds = agent_s, eval_s
        sandbox = get_sandbox("none")
        clock = Clock()
        session = Session(Git(root), cfg, loop, RunOptions(experiments=experiments, dry_run=True),
                          sandbox=sandbox, agent=SleepAgent(loop.agent, loop, sandbox),
                          evaluator=SleepEvaluator(loop, sandbox), listeners=[clock])
        clock.session = session  # the benchmark reads the slots' busy time, which listeners are not shown
        session.run()
        assert clock.start is not None and len(clock.laps) == experiments
        wall = clock.laps[-1] - clock.start
        busy = (sum(session.slots.busy_s) - clock.busy_at_start) / (slots * wall)
        return {"workers": workers, "slots": slots, "experiments": experiments, "wall_s": round(wall, 3),
                "per_hour": round(experiments * 3600 / wall, 1), "busy": round(busy, 3)}


def main() -> int:
    """Run the matrix; print it with the targets; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent-s", type=float, default=0.5)
    parser.add_argument("--eval-s", type=float, default=0.5)
    parser.add_argument("--experiments", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    rows = [measure(w, s, args.experiments, args.agent_s, args.eval_s) for s in args.slots for w in args.workers]
    base = next((r for r in rows if r["workers"] == 1 and r["slots"] == 1), None)
    print(f"A = {args.agent_s:g} s agent, E = {args.eval_s:g} s evaluation, {args.experiments} experiments a run")
    print(f"{'workers':>7} {'slots':>5} {'exp/hour':>9} {'× 1×1':>6} {'busy':>6}")
    for row in rows:
        speedup = row["per_hour"] / base["per_hour"] if base else float("nan")
        row["speedup"] = round(speedup, 2)
        print(f"{row['workers']:>7} {row['slots']:>5} {row['per_hour']:>9.0f} {speedup:>6.2f} {row['busy']:>6.0%}")
    checks = {}
    two = next((r for r in rows if r["workers"] == 2 and r["slots"] == 1), None)
    if two is not None:
        checks["2 workers, 1 slot: busy"] = (two["busy"], TARGET_BUSY, two["busy"] >= TARGET_BUSY)
    eight = next((r for r in rows if r["workers"] == 8 and r["slots"] == 4), None)
    if eight is not None and base is not None:
        checks["8 workers, 4 slots: speed-up"] = (eight["speedup"], TARGET_SPEEDUP, eight["speedup"] >= TARGET_SPEEDUP)
    for name, (value, target, ok) in checks.items():
        print(f"{name}: {value:g} (target ≥ {target:g}) {'met' if ok else 'MISSED'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps({
        "agent_s": args.agent_s, "eval_s": args.eval_s, "rows": rows,
        "targets": {name: {"value": v, "target": t, "met": ok} for name, (v, t, ok) in checks.items()},
    }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
