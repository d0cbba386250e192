"""Run every benchmark, one process each, and leave their JSON in benchmarks/results/.

Usage: python -m benchmarks.run_all [--quick]
The figures in docs/performance.md come from this command. Not part of the test run:
timings on shared machines are noisy, so each figure is a median of several runs with its range.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BENCHMARKS = {
    # name: (full arguments, --quick arguments)
    "overhead": (["--sizes", "10", "100", "1000", "10000", "--experiments", "20", "--repeats", "3"],
                 ["--sizes", "10", "10000", "--experiments", "10", "--repeats", "1"]),
    "api_requests": (["--sessions", "4", "--experiments", "5"], ["--sessions", "2", "--experiments", "3"]),
    "crash_latency": (["--repeats", "7"], ["--repeats", "3"]),
    "prompt_size": ([], []),
    "short_circuit": (["--experiments", "20"], ["--experiments", "8"]),
    "metric_parse": (["--lines", "60000", "--repeats", "5"], ["--lines", "60000", "--repeats", "1"]),
    "throughput": (["--experiments", "16"], ["--experiments", "8", "--workers", "1", "2", "8", "--slots", "1", "4"]),
    "runners": (["--experiments", "16"], ["--experiments", "6", "--runners", "1", "2"]),
    "startup": (["--runs", "10"], ["--runs", "3"]),
    "sandbox_phase": (["--runs", "40"], ["--runs", "5"]),
    "real_path": (["--short", "2", "--long", "12", "--repeats", "5"],
                  ["--short", "1", "--long", "3", "--repeats", "1"]),
}


def main() -> int:
    """Run them in turn; report which failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a smoke run)")
    parser.add_argument("only", nargs="*", help=f"run only these: {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    unknown = [name for name in args.only if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ARL_GITHUB_PACE": "0"}
    failed = []
    for name, (full, quick) in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        print(f"\n== {name} ==", flush=True)
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *(quick if args.quick else full)],
                              cwd=ROOT, env=env, check=False)
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
