"""How many evaluation runs short-circuiting saves on a discard-heavy sequence (counted, not timed).

A real loop over a real git lab: 4 seeds, an evaluation with planted Gaussian noise (sigma 1), and an
agent whose changes are mostly clearly worse than the baseline, as most agent changes are. The same
sequence runs with `short_circuit` off and on; the figure is the seed runs each needed.

Usage: python -m benchmarks.short_circuit [--experiments 20]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from arl_bot.loop import RunOptions, Session
from arl_bot.record import Record

from tests.noisy_lab import noisy_config, noisy_lab

RESULTS = Path(__file__).with_name("results")
SEEDS = "[1, 2, 3, 4]"


def sequence(experiments: int, seed: int = 3) -> list[str]:
    """True values the agent tries: four in five clearly worse than the baseline's 10, the rest close."""
    rng = random.Random(seed)
    return [f"{rng.uniform(12.5, 16.0) if rng.random() < 0.8 else rng.uniform(9.0, 10.5):.3f}"
            for _ in range(experiments)]


def run(folder: Path, values: list[str], short_circuit: bool) -> Record:
    """One loop over the sequence; the record says how many seed runs each attempt took."""
    folder.mkdir()
    evaluate = "short_circuit: true" if short_circuit else ""
    lab = noisy_lab(folder, values, noisy_config(seeds=SEEDS, evaluate=evaluate,
                                                 budget=f"{{experiments: {len(values)}}}"))
    return Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True)).run().record


def main() -> None:
    """Run both loops, print the figure and write it to benchmarks/results/short_circuit.json."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=20)
    args = parser.parse_args()
    values = sequence(args.experiments)
    with tempfile.TemporaryDirectory(prefix="arl-bench-sc-") as tmp:
        full = run(Path(tmp) / "off", values, short_circuit=False)
        cut = run(Path(tmp) / "on", values, short_circuit=True)
    runs_full = sum(len(a.seeds) for a in full.attempts)
    runs_cut = sum(len(a.seeds) for a in cut.attempts)
    statuses_full = [a.status for a in full.attempts]
    statuses_cut = [a.status for a in cut.attempts]
    figure = {
        "experiments": args.experiments, "seeds": 4, "noise_sigma": 1.0,
        "discards": statuses_full.count("discard"), "keeps": statuses_full.count("keep"),
        "seed_runs_without_short_circuit": runs_full, "seed_runs_with_short_circuit": runs_cut,
        "seed_runs_saved": runs_full - runs_cut, "saved_fraction": round(1 - runs_cut / runs_full, 3),
        "short_circuited_attempts": sum(1 for a in cut.attempts if a.extra.get("skipped_seeds")),
        "same_decisions": statuses_full == statuses_cut,
        "eval_s_without": round(sum(a.eval_s for a in full.attempts), 2),
        "eval_s_with": round(sum(a.eval_s for a in cut.attempts), 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "short_circuit.json").write_text(json.dumps(figure, indent=2) + "\n")
    print(f"{args.experiments} experiments x 4 seeds, {figure['discards']} discards: "
          f"{runs_full} seed runs without short-circuit, {runs_cut} with "
          f"({figure['seed_runs_saved']} saved, {figure['saved_fraction']:.0%}); "
          f"same decisions: {figure['same_decisions']}")
    print(json.dumps(figure, indent=2))


if __name__ == "__main__":
    main()
