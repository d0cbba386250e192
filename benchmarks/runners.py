"""Several runners on one loop: combined throughput of N `arl-bot run` processes in separate clones.

Usage: python -m benchmarks.runners [--runners 1 2 4] [--experiments 8] [--agent-s 0.5] [--eval-s 0.5]
Each runner is a real `arl-bot run` in its own clone, pushing to one bare remote; its agent sleeps A s and
its evaluation sleeps E s; every change is a discard, so what is measured is the cost of sharing the
record (fetches, renumbering, retried pushes), not re-measured keeps. Checks that no attempt is lost or
recorded twice. Prints a table and writes benchmarks/results/runners.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from arl_bot.git import Git
from arl_bot.github import notes

from benchmarks.synth import git

RESULTS = Path(__file__).with_name("results")
TARGET = 0.9  # N runners together do at least this share of N times one runner's experiments an hour
ARL = [sys.executable, "-m", "arl_bot.cli"]

CONFIG = textwrap.dedent("""\
    version: 1
    loops:
      bench:
        editable: ["model/**"]
        protected: ["eval/**"]
        metric: {{name: score, goal: minimize}}
        evaluate: {{command: "{py} eval/run.py", timeout: 60}}
        agent: {{kind: command, command: "{py} agent.py", timeout: 60}}
        sandbox: none
        budget: {{experiments: 1000}}
    """)
AGENT = textwrap.dedent("""\
    import os, time
    from pathlib import Path
    time.sleep({agent_s})
    path = Path("model/value.txt")
    path.write_text(f"{{float(path.read_text()) + 1000}}\\n")  # worse: a discard
    Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text("worse\\n")
    """)
EVAL = textwrap.dedent("""\
    import time
    from pathlib import Path
    time.sleep({eval_s})
    print(f"score: {{Path('model/value.txt').read_text().strip()}}")
    """)


def lab(root: Path, agent_s: float, eval_s: float) -> Path:
    """A bare remote holding a loop whose baseline is recorded; returns the remote."""
    work = root / "lab"
    (work / "model").mkdir(parents=True)
    (work / "eval").mkdir()
    (work / "model" / "value.txt").write_text("100\n")
    (work / "eval" / "run.py").write_text(EVAL.format(eval_s=eval_s))
    (work / "agent.py").write_text(AGENT.format(agent_s=agent_s))
    (work / "AGENT.md").write_text("Lower the score.\n")
    (work / ".autoresearch.yml").write_text(CONFIG.format(py=sys.executable))
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "lab")
    remote = root / "remote.git"
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "--quiet", "origin", "main")
    subprocess.run([*ARL, "run", "--experiments", "0", "--progress", "plain"], cwd=work, check=True,
                   capture_output=True, timeout=300)
    return remote


def measure(runners: int, experiments: int, agent_s: float, eval_s: float) -> dict[str, float]:
    """N runners, each `experiments` long, started at once; their combined rate and what the record holds."""
    with tempfile.TemporaryDirectory(prefix="arl-bench-runners-") as scratch:
        root = Path(scratch)
        remote = lab(root, agent_s, eval_s)
        clones = []
        for index in range(runners):
            clone = root / f"runner-{index}"
            git(root, "clone", "--quiet", str(remote), str(clone))
            clones.append(clone)
        t0 = time.monotonic()
        procs = [subprocess.Popen([*ARL, "run", "--experiments", str(experiments), "--progress", "plain"], cwd=clone,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for clone in clones]
        errors = [proc.communicate(timeout=1800)[1] for proc in procs]
        wall = time.monotonic() - t0
        failed = [err[-2000:] for proc, err in zip(procs, errors, strict=True) if proc.returncode != 0]
        if failed:
            raise SystemExit(f"a runner failed:\n{failed[0]}")
        check = root / "check"
        git(root, "clone", "--quiet", str(remote), str(check))
        record = notes.load(Git(check), "bench")
        assert record is not None
        numbers = [a.experiment for a in record.attempts]
        done = [a for a in record.attempts if a.status != "baseline"]
        return {"runners": runners, "experiments": len(done), "expected": runners * experiments,
                "unique_contiguous": numbers == list(range(len(numbers))), "wall_s": round(wall, 2),
                "per_hour": round(len(done) * 3600 / wall, 1)}


def main() -> int:
    """Run 1, 2, 4 runners; print the combined rate against N times one runner's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--experiments", type=int, default=8)
    parser.add_argument("--agent-s", type=float, default=0.5)
    parser.add_argument("--eval-s", type=float, default=0.5)
    args = parser.parse_args()
    rows = [measure(n, args.experiments, args.agent_s, args.eval_s) for n in args.runners]
    one = next((r for r in rows if r["runners"] == 1), rows[0])
    print(f"A = {args.agent_s:g} s, E = {args.eval_s:g} s, {args.experiments} experiments a runner")
    print(f"{'runners':>7} {'exp/hour':>9} {'vs N×1':>7} {'recorded':>9} {'lost/dup':>9}")
    for row in rows:
        row["scaling"] = round(row["per_hour"] / (row["runners"] * one["per_hour"] / one["runners"]), 3)
        ok = row["experiments"] == row["expected"] and row["unique_contiguous"]
        print(f"{row['runners']:>7} {row['per_hour']:>9.0f} {row['scaling']:>7.2f} "
              f"{row['experiments']:>4}/{row['expected']:<4} {'none' if ok else 'YES':>9}")
        row["target_met"] = ok and row["scaling"] >= TARGET
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "runners.json").write_text(json.dumps({"agent_s": args.agent_s, "eval_s": args.eval_s,
                                                      "target": TARGET, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
