"""How long the metric parse takes on outputs an evaluation could print (many blank lines, long digit runs).

Usage: python -m benchmarks.metric_parse [--lines 60000] [--repeats 5]
The pattern it replaced took 37 s on 60,000 blank lines (quadratic); this parse reads line by line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

from arl_bot.config import Parse
from arl_bot.evaluate import MetricNotFound, parse_metric

RESULTS = Path(__file__).with_name("results")


def outputs(lines: int) -> dict[str, str]:
    """Hostile and ordinary outputs of about `lines` lines; the metric comes last but for the digit run."""
    return {
        "blank lines": "\n" * lines + "score: 1.5\n",
        "whitespace lines": "   \n" * lines + "score: 1.5\n",
        "log lines": "".join(f"step {i}: loss {i / 7:.4f}\n" for i in range(lines)) + "score: 1.5\n",
        "one long digit run": "score: 1.5\nscore: " + "1" * lines * 10 + "x\n",
    }


def seconds(text: str, parse: Parse, repeats: int) -> list[float]:
    """Wall time of parse_metric on text, repeats times."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.suppress(MetricNotFound):  # the digit run has no metric: the search goes through it all
            parse_metric(text, parse, "score")
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    """Time the default parse and a regex on each output; print and save the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    parses = {"default": Parse(), "regex": Parse(regex=r"^score:\s*([-+0-9.eE]+)$")}
    results = []
    for name, text in outputs(args.lines).items():
        for kind, parse in parses.items():
            times = seconds(text, parse, args.repeats)
            results.append({"output": name, "parse": kind, "lines": args.lines, "median_s": statistics.median(times),
                            "min_s": min(times), "max_s": max(times)})
            print(f"{name:>20} {kind:>8}: {statistics.median(times) * 1000:8.2f} ms (median of {args.repeats})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "metric_parse.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
