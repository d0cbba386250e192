"""How long `arl-bot --version` and `arl-bot results` take to start and finish, as a user runs them.

Usage: python -m benchmarks.startup [--runs 15] [--attempts 50]
Runs each command as its own process (the installed `arl-bot` script), the commands taking turns so the
shared machine's drift hits them alike; prints the median and range, and writes benchmarks/results/startup.json.
Bytecode caching is left on (PYTHONDONTWRITEBYTECODE is dropped): a user's installed package has its .pyc files.
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
import time
from pathlib import Path

from benchmarks.synth import make_repo, synth_record

RESULTS = Path(__file__).with_name("results")
HEAVY = ("pydantic", "yaml", "git", "gitdb", "github", "anthropic", "docker", "torch", "optuna", "plotly",
         "matplotlib", "numpy")


def arl_bot() -> list[str]:
    """The installed console script, else the module (a checkout without `pip install -e .`)."""
    script = Path(sys.executable).with_name("arl-bot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "arl_bot.cli"]


def heavy_imports(args: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """The heavy top-level packages the command imports (run in-process under -c, like the test does)."""
    code = ("import sys, io, contextlib\nimport arl_bot.cli as c\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        c.main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))")
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                         check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"')))


def main() -> None:
    """Time the commands and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--attempts", type=int, default=50, help="attempts in the record `results` prints")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = {"--version": ["--version"], "results": ["results"], "results --loop": ["results", "--loop", "bench"],
                "python -c pass": None}
    with tempfile.TemporaryDirectory(prefix="arl-bench-") as tmp:
        root = make_repo(Path(tmp) / "lab")
        synth_record(root, "bench", args.attempts)
        base = arl_bot()
        argv = {name: ([sys.executable, "-c", "pass"] if extra is None else [*base, *extra])
                for name, extra in commands.items()}
        for cmd in argv.values():  # warm the page cache and write the .pyc files once
            subprocess.run(cmd, cwd=root, env=env, capture_output=True, check=True)
        times: dict[str, list[float]] = {name: [] for name in argv}
        for _ in range(args.runs):
            for name, cmd in argv.items():
                start = time.perf_counter()
                subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, check=True)
                times[name].append((time.perf_counter() - start) * 1000)
        heavy = {name: heavy_imports(extra, root, env) for name, extra in commands.items() if extra is not None}
    rows = []
    print(f"{'command':<16}  {'median ms':>10}  {'min–max ms':>16}  heavy modules imported")
    for name, ms in times.items():
        row = {"command": name, "median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
               "runs": len(ms), "heavy_imports": heavy.get(name, [])}
        rows.append(row)
        print(f"{name:<16}  {row['median_ms']:>10.0f}  {row['min_ms']:>7.0f}–{row['max_ms']:<8.0f}  "
              f"{', '.join(heavy.get(name, [])) or '-'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps({"rows": rows, "command": shutil.which("arl-bot")}, indent=2))


if __name__ == "__main__":
    main()
