"""What the bubblewrap sandbox adds to one phase: `true` run directly vs under an evaluation's policy.

Usage: python -m benchmarks.sandbox_phase [--runs 40]
Five ways take turns (so the shared machine's drift hits them alike): process.run directly, bwrap alone (the
same argv the sandbox builds, without its set-up), and BubblewrapSandbox.run with the default limits (a process
limit: a pids cgroup where the bot may make one), with a memory limit too (cgroups), and with rlimits. Prints
median and range in ms, the sandbox's cost over process.run, and the bot's own CPU time per phase (steadier
than the wall clock on a busy machine); writes benchmarks/results/sandbox_phase.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from arl_bot import policy as phase_policy
from arl_bot import process
from arl_bot.config import PhaseSandbox, SandboxSettings
from arl_bot.sandbox.bubblewrap import BubblewrapSandbox, bwrap_args

RESULTS = Path(__file__).with_name("results")


def main() -> None:
    """Time each way and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SystemExit("bwrap is not installed: apt-get install bubblewrap")
    with tempfile.TemporaryDirectory(prefix="arl-bench-") as tmp:
        tree, scratch = Path(tmp) / "tree", Path(tmp) / "scratch"
        tree.mkdir()
        scratch.mkdir()
        subprocess.run(["git", "init", "--quiet", str(tree)], check=True)
        # A typical evaluation: the default process limit (4096) and a memory limit, so cgroups get work.
        settings = SandboxSettings(evaluation=PhaseSandbox(memory_mb=2048))
        with_cgroups, without = BubblewrapSandbox(settings), BubblewrapSandbox(settings, cgroups=False)
        default = BubblewrapSandbox()  # the default limits: 4096 processes (a pids cgroup), no memory limit
        policy = phase_policy.evaluation_policy(tree, scratch, {"AUTORESEARCH_SEED": "1"})
        plain_argv = [bwrap, *bwrap_args(with_cgroups.resolve(policy), tree), "--", "true"]
        ways: dict[str, Callable[[], process.ProcessResult]] = {
            "process.run": lambda: process.run(["true"], cwd=tree, env=policy.env, timeout=60),
            "bwrap alone": lambda: process.run(plain_argv, cwd=tree, env=policy.env, timeout=60),
            "sandbox, default": lambda: default.run(["true"], cwd=tree, policy=policy, timeout=60),
            "sandbox, cgroups": lambda: with_cgroups.run(["true"], cwd=tree, policy=policy, timeout=60),
            "sandbox, rlimits": lambda: without.run(["true"], cwd=tree, policy=policy, timeout=60),
        }
        for way in ways.values():  # warm up: caches, the page cache, the first cgroup
            assert way().ok
        times: dict[str, list[float]] = {name: [] for name in ways}
        cpu: dict[str, list[float]] = {name: [] for name in ways}  # the bot's own CPU: steadier than the wall
        for _ in range(args.runs):
            for name, way in ways.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                result = way()
                times[name].append((time.perf_counter() - start) * 1000)
                cpu[name].append((time.process_time() - start_cpu) * 1000)
                assert result.ok, result.stderr
        enforced = {"default": default.last_enforced, "cgroups": with_cgroups.last_enforced}
    base = statistics.median(times["process.run"])
    rows = []
    print(f"{'way':<18}  {'median ms':>10}  {'min–max ms':>14}  {'over process.run':>16}  {'bot CPU ms':>10}")
    for name, ms in times.items():
        row = {"way": name, "median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
               "runs": len(ms), "over_process_run_ms": statistics.median(ms) - base,
               "bot_cpu_ms": statistics.median(cpu[name])}
        rows.append(row)
        print(f"{name:<18}  {row['median_ms']:>10.1f}  {row['min_ms']:>6.1f}–{row['max_ms']:<7.1f}  "
              f"{row['over_process_run_ms']:>+16.1f}  {row['bot_cpu_ms']:>10.2f}")
    for name, how in enforced.items():
        print(f"limits, {name}: {how}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sandbox_phase.json").write_text(json.dumps({"rows": rows, "enforced": enforced}, indent=2))


if __name__ == "__main__":
    main()
