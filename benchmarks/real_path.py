"""The bot's own cost per experiment on the path a user runs: `arl-bot run` as a process, a `command` agent
and a `command` evaluation (each a shell that writes or prints one line), with and without bubblewrap,
with and without pushing to a bare remote.

Usage: python -m benchmarks.real_path [--short 2] [--long 12] [--repeats 3]
Each combination runs `arl-bot run --experiments N` for a short and a long N; the cost per experiment is the
difference in wall time over the difference in N, so the start (imports, config, worktree, baseline) drops
out. Combinations take turns within each repeat so the shared machine's drift hits them alike; the figure is
the median over repeats. Writes benchmarks/results/real_path.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from benchmarks.synth import IDENTITY, git

RESULTS = Path(__file__).with_name("results")

# Even experiments improve the score (a keep: commit, move the branch), odd ones worsen it (a discard).
AGENT = textwrap.dedent("""\
    n=$AUTORESEARCH_EXPERIMENT
    if [ $((n % 2)) = 0 ]; then v=$((100000 - n)); else v=$((200000 + n)); fi
    echo "score: $v" > model/value.txt
    echo "try $n" > "$AUTORESEARCH_DESCRIPTION_FILE"
    """)

CONFIG = textwrap.dedent("""\
    version: 1
    loops:
      bench:
        editable: ["model/**"]
        protected: ["agent.sh"]
        metric: {{name: score, goal: minimize}}
        evaluate: {{command: "cat model/value.txt", seeds: [1], timeout: 60}}
        agent: {{kind: command, command: "sh agent.sh", timeout: 60}}
        sandbox: {sandbox}
        budget: {{experiments: 100000, crashes: 100000}}
        strategy: {{explore_every: null, diversify_after: null}}
    """)


def make_lab(root: Path, sandbox: str, push: bool) -> Path:
    """A committed lab with the shell agent; with push, a bare remote called origin."""
    root.mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "model").mkdir()
    (root / "model" / "value.txt").write_text("score: 150000\n")
    (root / "agent.sh").write_text(AGENT)
    (root / "AGENT.md").write_text("Lower the score.\n")
    (root / ".autoresearch.yml").write_text(CONFIG.format(sandbox=sandbox))
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "lab")
    if push:
        bare = root.parent / f"{root.name}-remote.git"
        git(root.parent, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
        git(root, "remote", "add", "origin", str(bare))
        git(root, "push", "--quiet", "origin", "main")
    return root


def arl_bot() -> list[str]:
    """The installed console script, else the module."""
    script = Path(sys.executable).with_name("arl-bot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "arl_bot.cli"]


def timed_run(workdir: Path, sandbox: str, push: bool, experiments: int) -> float:
    """Seconds `arl-bot run --experiments N` takes in a fresh lab."""
    lab = make_lab(Path(tempfile.mkdtemp(prefix="lab-", dir=workdir)) / "lab", sandbox, push)
    argv = [*arl_bot(), "run", "--experiments", str(experiments), "--progress", "plain",
            *([] if push else ["--dry-run"])]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | IDENTITY
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=lab, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"arl-bot run failed in {lab}:\n{done.stderr[-3000:]}")
    shutil.rmtree(lab.parent, ignore_errors=True)
    return elapsed


def main() -> None:
    """Run the combinations and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=2)
    parser.add_argument("--long", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    combos = [(sandbox, push) for sandbox in ("none", "bubblewrap") for push in (False, True)]
    if shutil.which("bwrap") is None:
        raise SystemExit("bwrap is not installed: apt-get install bubblewrap")
    per: dict[tuple[str, bool], list[float]] = {combo: [] for combo in combos}
    starts: dict[tuple[str, bool], list[float]] = {combo: [] for combo in combos}
    with tempfile.TemporaryDirectory(prefix="arl-bench-") as tmp:
        timed_run(Path(tmp), "bubblewrap", True, 1)  # warm up: .pyc files, the page cache
        for _ in range(args.repeats):
            for sandbox, push in combos:
                short = timed_run(Path(tmp), sandbox, push, args.short)
                long = timed_run(Path(tmp), sandbox, push, args.long)
                per_experiment = (long - short) / (args.long - args.short)
                per[(sandbox, push)].append(per_experiment * 1000)
                starts[(sandbox, push)].append((short - args.short * per_experiment) * 1000)
    rows = []
    print(f"{'sandbox':<11} {'push':<5} {'ms per experiment':>18} {'min–max':>14} {'start ms':>9}")
    for sandbox, push in combos:
        ms = per[(sandbox, push)]
        row = {"sandbox": sandbox, "push": push, "median_ms": statistics.median(ms), "min_ms": min(ms),
               "max_ms": max(ms), "repeats": len(ms), "start_ms": statistics.median(starts[(sandbox, push)])}
        rows.append(row)
        print(f"{sandbox:<11} {'yes' if push else 'no':<5} {row['median_ms']:>18.0f} "
              f"{row['min_ms']:>6.0f}–{row['max_ms']:<7.0f} {row['start_ms']:>9.0f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "real_path.json").write_text(json.dumps(
        {"rows": rows, "short": args.short, "long": args.long}, indent=2))


if __name__ == "__main__":
    main()
