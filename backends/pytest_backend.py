"""The pytest backend: the metric is the pass rate of a test suite, one sample per test.

    metric: {name: pass_rate, goal: maximize}
    evaluate:
      backend: pytest
      options: {args: ["tests/"], python: python3}
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from arl_bot import policy
from arl_bot.config import PluginOptions
from arl_bot.evaluate import Evaluator, SeedResult
from arl_bot.safefile import UntrustedFileError, read_untrusted
from pydantic import Field

REPORT_BYTES = 50_000_000  # a junit report bigger than this is not read
MESSAGE_CHARS = 300
# pytest's exit codes: 0 all passed, 1 some failed (both are results); anything else means no result.
NO_RESULT = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests were collected"}


class PytestOptions(PluginOptions):
    """`evaluate.options` of the pytest backend."""

    args: list[str] = Field(default_factory=list)  # pytest's arguments, e.g. ["tests/", "-x"]
    python: str | None = None  # the interpreter that runs pytest; default: the bot's own


class PytestEvaluator(Evaluator):
    """Runs pytest under the sandbox with a junit report in scratch and scores the fraction that passed."""

    Options = PytestOptions
    options: PytestOptions

    def evaluate(self, tree: Path, seed: int, scratch: Path) -> SeedResult:
        """Run the suite once; skipped tests count neither way."""
        options = self.options
        report = scratch / "junit.xml"
        argv = [options.python or sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                f"--junitxml={report}", "-o", "junit_family=xunit2", *options.args]
        env = {"AUTORESEARCH_SEED": str(seed), "AUTORESEARCH_SCRATCH": str(scratch), "PYTHONHASHSEED": str(seed)}
        run = self.sandbox.run(argv, cwd=tree, policy=policy.evaluation_policy(tree, scratch, env),
                               timeout=self.loop.evaluate.timeout)
        log = run.tail()
        if run.timed_out:
            return SeedResult(seed, None, f"timed out after {self.loop.evaluate.timeout:g}s", log, run.duration_s)
        if run.returncode not in (0, 1):
            why = NO_RESULT.get(run.returncode or 0, f"exited with status {run.returncode}")
            return SeedResult(seed, None, f"pytest: {why}", log, run.duration_s)
        try:
            samples = read_junit(report)
        except UntrustedFileError as exc:
            return SeedResult(seed, None, f"pytest wrote no readable report: {exc.message}", log, run.duration_s)
        except (OSError, ValueError, ET.ParseError) as exc:
            return SeedResult(seed, None, f"pytest wrote no readable report: {exc}", log, run.duration_s)
        counted = [s for s in samples if not s.get("skipped")]  # a skipped test is neither a pass nor a fail
        if not counted:
            return SeedResult(seed, None, "pytest: every test was skipped", log, run.duration_s)
        passed = sum(1 for s in counted if s["score"] == 1.0)
        metrics = {"passed": float(passed), "failed": float(len(counted) - passed),
                   "skipped": float(len(samples) - len(counted)), "tests": float(len(samples))}
        return SeedResult(seed, passed / len(counted), "", log, run.duration_s, metrics, counted)


def read_junit(path: Path) -> list[dict[str, Any]]:
    """One sample per test case: score 1 passed, 0 failed or errored; skipped ones are marked."""
    # Written where the tests (the agent's code) ran: never through a link, never more than REPORT_BYTES.
    root = ET.fromstring(read_untrusted(path.parent, path.name, REPORT_BYTES))
    samples = []
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        node = f"{classname}::{name}" if classname else name  # classname: dotted module[.Class]
        problem = next((child for child in case if child.tag in ("failure", "error")), None)
        skipped = next((child for child in case if child.tag == "skipped"), None)
        if problem is not None:
            message = problem.get("message") or (problem.text or "").strip().splitlines()[-1:] or [""]
            text = message if isinstance(message, str) else message[0]
            samples.append({"id": node, "score": 0.0, "error": f"{problem.tag}: {text}"[:MESSAGE_CHARS],
                            "extra": {"time": float(case.get("time", "0") or 0)}})
        elif skipped is not None:
            samples.append({"id": node, "score": None, "skipped": True})
        else:
            samples.append({"id": node, "score": 1.0, "error": "",
                            "extra": {"time": float(case.get("time", "0") or 0)}})
    return samples
