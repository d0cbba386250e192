"""What the bot itself costs per experiment as the record grows (no-op agent, instant evaluation).

Usage: python -m benchmarks.overhead [--sizes 10 100 1000 10000] [--experiments 20] [--repeats 3]
Prints a table and writes benchmarks/results/overhead.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from arl_bot import config, prbody
from arl_bot.agents import Agent, AgentResult, AgentTask
from arl_bot.evaluate import Evaluator, SeedResult
from arl_bot.git import Git
from arl_bot.loop import RunOptions, Session
from arl_bot.record import Attempt
from arl_bot.runview import RunView
from arl_bot.sandbox import get_sandbox

from benchmarks.synth import make_repo, synth_record

RESULTS = Path(__file__).with_name("results")


class NudgeAgent(Agent):
    """Writes a new value in-process: better on even experiments, worse on odd ones."""

    kind = "bench"

    def propose(self, task: AgentTask) -> AgentResult:
        """Change the model file; costs microseconds."""
        path = task.tree / "model" / "value.txt"
        current = float(path.read_text())
        path.write_text(f"{current - 1 if task.experiment % 2 == 0 else current + 1000}\n")
        return AgentResult(description=f"nudge {task.experiment}")


class ReadEvaluator(Evaluator):
    """Reads the value back in-process: an instant evaluation."""

    def evaluate(self, tree: Path, seed: int, scratch: Path) -> SeedResult:
        """The number in model/value.txt."""
        return SeedResult(seed, float((tree / "model" / "value.txt").read_text()))


class Timer:
    """Times each attempt from the end of the previous one, and renders the PR body like the Action."""

    def __init__(self, loop: config.Loop) -> None:
        self.ctx = prbody.BodyContext(loop=loop.name, goal=loop.metric.goal, metric=loop.metric.name)
        self.times: list[float] = []
        self.body_chars = 0
        self._t = time.perf_counter()

    def on_attempt(self, run: RunView, attempt: Attempt) -> None:
        """Render the body (part of the bot's cost), then take the lap."""
        assert run.record is not None
        self.body_chars = len(prbody.render(run.record, self.ctx))
        now = time.perf_counter()
        self.times.append(now - self._t)
        self._t = now


def measure(size: int, experiments: int) -> tuple[list[float], int]:
    """Per-experiment seconds at a record of `size` attempts, and the PR body's size."""
    with tempfile.TemporaryDirectory(prefix="arl-bench-") as tmp:
        root = make_repo(Path(tmp) / "lab")
        synth_record(root, "bench", size)
        repo = Git(root)
        cfg = config.load(root / ".autoresearch.yml")
        loop = cfg.loop("bench")
        sandbox = get_sandbox("none")
        timer = Timer(loop)
        Session(repo, cfg, loop, RunOptions(experiments=experiments, dry_run=True),
                sandbox=sandbox, agent=NudgeAgent(loop.agent, loop, sandbox),
                evaluator=ReadEvaluator(loop, sandbox), listeners=[timer]).run()  # type: ignore[list-item]
        return timer.times[1:], timer.body_chars  # the first lap includes setup


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--experiments", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    laps: dict[int, list[float]] = {size: [] for size in args.sizes}
    bodies: dict[int, int] = {}
    # Sizes take turns within each repeat, so the machine's drift (it is shared) hits them all alike.
    for _ in range(args.repeats):
        for size in args.sizes:
            times, bodies[size] = measure(size, args.experiments)
            laps[size] += times
    print(f"{'record size':>12}  {'median ms':>10}  {'min–max ms':>16}  {'PR body chars':>14}")
    for size in args.sizes:
        ms = [t * 1000 for t in laps[size]]
        row = {"record_size": size, "median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
               "samples": len(ms), "pr_body_chars": bodies[size]}
        rows.append(row)
        print(f"{size:>12}  {row['median_ms']:>10.1f}  {row['min_ms']:>7.1f}–{row['max_ms']:<8.1f}  "
              f"{bodies[size]:>14}")
    ratio = rows[-1]["median_ms"] / rows[0]["median_ms"]  # type: ignore[operator]
    print(f"flatness: median at {rows[-1]['record_size']} / median at {rows[0]['record_size']} = {ratio:.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps({"rows": rows, "flatness": ratio}, indent=2))


if __name__ == "__main__":
    main()
