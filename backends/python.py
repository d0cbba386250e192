"""The python backend: an autoresearch-lab style `EvalBackend` class, run in a sandboxed subprocess.

    evaluate:
      backend: "eval/backend.py:Backend"      # or backend: python, options: {class: "eval/backend.py:Backend"}
      options: {data_dir: data, pipeline_dir: pipeline, sample_ids: [a, b]}
"""

from __future__ import annotations

import ast
import json
import math
import sys
from pathlib import Path
from typing import Any

from arl_bot import policy
from arl_bot.config import PluginOptions
from arl_bot.errors import PluginError
from arl_bot.evaluate import Evaluator, SeedResult
from arl_bot.safefile import UntrustedFileError, read_untrusted
from pydantic import ConfigDict, Field

RESULT_BYTES = 50_000_000  # a result file bigger than this is a broken backend, not a result


def is_lab_reference(name: str) -> bool:
    """Whether `evaluate.backend` is a `path/file.py:Class` lab backend (run here) rather than an Evaluator.

    Decided by reading the file's syntax, never by running it: a class deriving from a `...Evaluator`
    is an arl-bot plugin and loads in-process like an entry point; anything else (an autoresearch-lab
    `EvalBackend`, or a file that only exists in the evaluated tree) runs in a sandboxed child.
    """
    target, sep, attr = name.rpartition(":")
    if not (sep and attr and target.endswith(".py")):
        return False
    try:
        module = ast.parse(Path(target).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return True
    for node in module.body:
        if isinstance(node, ast.ClassDef) and node.name == attr:
            bases = [b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else ""
                     for b in node.bases]
            return not any(base.endswith("Evaluator") for base in bases)
    return True


class PythonOptions(PluginOptions):
    """`evaluate.options` of the python backend (and of a lab's `backend: path/file.py:Class`)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    class_: str | None = Field(default=None, alias="class", pattern=r".:.")  # with `backend: python`
    pipeline_dir: str = "."  # relative paths are in the tree
    data_dir: str = "data"  # the backend's data_dir (ARL_DATA_DIR); a relative path is in the tree
    sample_ids: list[str | int] | None = None  # evaluate only these samples; default: all
    python: str | None = None  # the interpreter that runs the backend; default: the bot's own


class PythonEvaluator(Evaluator):
    """Calls `Backend().evaluate(pipeline_dir, data_dir, sample_ids)` in a child under the sandbox."""

    Options = PythonOptions
    options: PythonOptions

    def reference(self) -> str:
        """The backend class, as `path/file.py:Class` or `module:Class`."""
        settings = self.loop.evaluate
        if settings.backend is not None and ":" in settings.backend:
            return settings.backend
        reference = self.options.class_
        if reference is None:
            raise PluginError("the python backend needs the class to run",
                              hint='set evaluate.options.class: "eval/backend.py:Backend"')
        return reference

    def evaluate(self, tree: Path, seed: int, scratch: Path) -> SeedResult:
        """Run the backend once; its `score` (or `metrics[metric.name]`) is the metric."""
        options = self.options
        pipeline_dir = _under(tree, options.pipeline_dir)
        data_dir = _under(tree, options.data_dir)
        result_file = scratch / "lab-result.json"
        argv = [options.python or sys.executable, "-m", "arl_bot.backends.lab_runner",
                "--backend", self.reference(), "--pipeline-dir", str(pipeline_dir), "--data-dir", str(data_dir),
                "--result", str(result_file), "--seed", str(int(seed))]
        for sample_id in options.sample_ids or []:
            argv += ["--sample-id", str(sample_id)]
        env = {"AUTORESEARCH_SEED": str(seed), "AUTORESEARCH_SCRATCH": str(scratch),
               "ARL_PIPELINE_DIR": str(pipeline_dir), "ARL_DATA_DIR": str(data_dir)}
        evaluation = policy.evaluation_policy(tree, scratch, env)
        run = self.sandbox.run(argv, cwd=tree, policy=evaluation, timeout=self.loop.evaluate.timeout)
        log = run.tail()
        if run.timed_out:
            return SeedResult(seed, None, f"timed out after {self.loop.evaluate.timeout:g}s", log, run.duration_s)
        if run.returncode != 0:
            return SeedResult(seed, None, f"the backend exited with status {run.returncode}", log, run.duration_s)
        try:  # written where the agent's code ran: never through a link, never more than RESULT_BYTES
            data: dict[str, Any] = json.loads(read_untrusted(result_file.parent, result_file.name, RESULT_BYTES))
        except UntrustedFileError as exc:
            return SeedResult(seed, None, f"the backend wrote no readable result: {exc.message}", log, run.duration_s)
        except ValueError as exc:
            return SeedResult(seed, None, f"the backend wrote no readable result: {exc}", log, run.duration_s)
        metrics = {k: float(v) for k, v in data.get("metrics", {}).items()}
        value = float(metrics.get(self.loop.metric.name, data.get("score", math.nan)))
        if not math.isfinite(value):
            return SeedResult(seed, None, f"the metric is {value}", log, run.duration_s, metrics)
        return SeedResult(seed, value, "", log, run.duration_s, metrics, list(data.get("samples", [])))


def _under(tree: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else tree / candidate
