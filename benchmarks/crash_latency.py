"""How long after an evaluation crashes or times out the bot knows it (and has its process group gone).

Usage: python -m benchmarks.crash_latency [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from arl_bot import process

RESULTS = Path(__file__).with_name("results")

CRASH = """
import sys, time
open(sys.argv[1], "w").write(repr(time.time()))
raise SystemExit(1)
"""

# A child that ignores SIGTERM: the worst case, where only SIGKILL after the grace period ends it.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(60)
"""


def crash_latency(tmp: Path) -> float:
    """Seconds from the evaluation's exit to process.run returning."""
    stamp = tmp / "exit-time"
    script = tmp / "crash.py"
    script.write_text(CRASH)
    process.run([sys.executable, str(script), str(stamp)], cwd=tmp, env={"PATH": "/usr/bin:/bin"}, timeout=30)
    returned = time.time()
    return returned - float(stamp.read_text())


def timeout_latency(tmp: Path, stubborn: bool) -> float:
    """Seconds from the deadline to process.run returning with the group gone."""
    script = tmp / "slow.py"
    script.write_text(STUBBORN if stubborn else "import time\ntime.sleep(60)\n")
    limit = 0.5
    start = time.monotonic()
    result = process.run([sys.executable, str(script)], cwd=tmp, env={"PATH": "/usr/bin:/bin"}, timeout=limit)
    assert result.timed_out
    return time.monotonic() - start - limit


def summarise(values: list[float]) -> dict[str, float]:
    """Median, min and max in milliseconds."""
    ms = [v * 1000 for v in values]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms)}


def run(repeats: int = 7) -> dict[str, dict[str, float]]:
    """All three figures."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        return {
            "crash (exit 1) -> noticed": summarise([crash_latency(tmp) for _ in range(repeats)]),
            "timeout -> noticed, group killed": summarise([timeout_latency(tmp, False) for _ in range(repeats)]),
            "timeout, SIGTERM ignored -> group killed": summarise(
                [timeout_latency(tmp, True) for _ in range(max(3, repeats // 2))]),
        }


def main() -> None:
    """Print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    rows = run(parser.parse_args().repeats)
    for name, row in rows.items():
        print(f"{name:<44} median {row['median_ms']:7.1f} ms  ({row['min_ms']:.1f}–{row['max_ms']:.1f})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "crash_latency.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
