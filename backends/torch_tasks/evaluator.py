"""The torch-charlm and torch-digits evaluators: run the lab's train.py against a task's fixed API."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import ClassVar, Literal

from arl_bot import policy
from arl_bot.config import CONFIG_FILE, Loop, Number, PluginOptions
from arl_bot.errors import ConfigError
from arl_bot.evaluate import Evaluator, SeedResult
from arl_bot.safefile import MissingFileError, UntrustedFileError, read_untrusted
from arl_bot.sandbox import Sandbox
from pydantic import Field

from . import BUDGET_BY_ENV, BUDGET_ENV, DATA_ENV, DEVICE_ENV, RESULT_ENV, SEED_ENV, SPLIT_ENV, STEPS_ENV, data

RESULT_BYTES = 50_000_000  # a result (with its per-sample list) bigger than this is not read


class TaskOptions(PluginOptions):
    """`evaluate.options` of a torch task loop."""

    script: str = Field(default="train.py", min_length=1)  # the training script, relative to the lab's root
    # an interpreter with arl-bot and torch installed (a CUDA one on a GPU box); default: the bot's own
    python: str | None = Field(default=None, min_length=1)
    time_budget: Number | None = Field(default=None, gt=0)  # seconds of training per experiment; None: the task's
    steps: int | None = Field(default=None, gt=0)  # training steps per experiment when budgeted by steps
    # auto: steps on the CPU (a busy CPU trains slower, never less), time on CUDA; or time, or steps
    budget: Literal["auto", "time", "steps"] = "auto"
    device: str = Field(default="auto", min_length=1)  # auto: CUDA when present, else the CPU
    split: Literal["val", "test"] = "val"  # test: score on the holdout split instead (for a holdout evaluation)


def _leaves_time(loop: Loop, options: TaskOptions) -> None:
    budget = options.time_budget
    if budget is not None and options.budget != "steps" and loop.evaluate.timeout <= budget:
        raise ConfigError(
            f"evaluate.timeout ({loop.evaluate.timeout:g}s) leaves no time beyond the "
            f"{budget:g}s training budget", path=CONFIG_FILE, key=f"loops.{loop.name}.evaluate.timeout",
            hint="allow startup and scoring too: e.g. the budget plus 60 seconds")


class TorchTaskEvaluator(Evaluator):
    """Stages the task's data, runs the training script under the sandbox, reads the fixed API's score."""

    task: ClassVar[str] = ""
    Options = TaskOptions
    options: TaskOptions

    def __init__(self, loop: Loop, sandbox: Sandbox) -> None:
        super().__init__(loop, sandbox)
        _leaves_time(loop, self.options)

    def evaluate(self, tree: Path, seed: int, scratch: Path) -> SeedResult:
        """Run the training script once with seed; its score comes only from the fixed API's result file."""
        opts = self.options
        script = tree / opts.script
        if not script.is_file():
            return SeedResult(seed, None, f"no training script {opts.script} in the lab")
        if (script.parent / "arl_bot").exists():  # python puts the script's folder first on sys.path
            return SeedResult(seed, None, f"an arl_bot/ folder beside {opts.script} would shadow the fixed "
                              "scoring API; remove it from the lab")
        prepared = data.prepare(self.task)
        # Copy only what the script may read: the test split stays out of sight unless it is scored.
        splits = ["train", "val", "test"] if opts.split == "test" else ["train", "val"]
        staged = data.stage(prepared, scratch / "task-data", splits)
        result_file = scratch / "task-result.json"
        env = {SEED_ENV: str(int(seed)), DATA_ENV: str(staged.root), RESULT_ENV: str(result_file),
               SPLIT_ENV: opts.split, DEVICE_ENV: opts.device, "AUTORESEARCH_SCRATCH": str(scratch)}
        if opts.time_budget is not None:
            env[BUDGET_ENV] = repr(opts.time_budget)
        if opts.steps is not None:
            env[STEPS_ENV] = str(opts.steps)
        env[BUDGET_BY_ENV] = opts.budget  # train.py's clock decides auto: it is the one that sees the device
        timeout = self.loop.evaluate.timeout
        run = self.sandbox.run([opts.python or sys.executable, opts.script], cwd=tree,
                               policy=policy.evaluation_policy(tree, scratch, env), timeout=timeout)
        log = f"{run.tail()}\n[torch-{self.task}] data: {prepared.source} sha256:{prepared.sha256}"
        if run.timed_out:
            return SeedResult(seed, None, f"timed out after {timeout:g}s", log, run.duration_s)
        if run.returncode != 0:
            return SeedResult(seed, None, f"exited with status {run.returncode}", log, run.duration_s)
        return self._read(seed, result_file, prepared, log, run.duration_s)

    def _read(self, seed: int, result_file: Path, prepared: data.Prepared, log: str, duration: float) -> SeedResult:
        try:  # written where the agent's script ran: never through a link, never unbounded
            result = json.loads(read_untrusted(result_file.parent, result_file.name, RESULT_BYTES))
        except MissingFileError:
            return SeedResult(seed, None, f"no score: {self.options.script} finished without calling the "
                              f"task's evaluate function", log, duration)
        except UntrustedFileError as exc:
            return SeedResult(seed, None, f"no score: the result file {exc.message}", log, duration)
        except ValueError:
            return SeedResult(seed, None, "no score: the result file is not JSON", log, duration)
        value = result.get("value") if isinstance(result, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return SeedResult(seed, None, f"no score: the metric is {value!r}", log, duration)
        if result.get("task") != self.task or result.get("data_sha256") != prepared.sha256:
            return SeedResult(seed, None, f"no score: the result is not for the {self.task} data staged for "
                              "this run (task or data hash differ)", log, duration)
        metrics = {k: float(v) for k, v in result.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("value", "seed")}
        samples = result.get("samples")
        samples = [s for s in samples if isinstance(s, dict)] if isinstance(samples, list) else []
        return SeedResult(seed, float(value), "", log, duration, metrics=metrics, samples=samples)


class CharLMEvaluator(TorchTaskEvaluator):
    """torch-charlm: bits per byte of a byte-level language model on standard-library docstrings."""

    task = "charlm"


class DigitsEvaluator(TorchTaskEvaluator):
    """torch-digits: error rate of an 8x8 handwritten-digit classifier."""

    task = "digits"
