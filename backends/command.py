"""The command evaluator: run the configured command, read the metric from its output."""

from __future__ import annotations

from pathlib import Path

from arl_bot import guards, policy
from arl_bot.config import PluginOptions
from arl_bot.evaluate import Evaluator, MetricNotFound, SeedResult, parse_metric, result_text_of
from arl_bot.process import ProcessResult
from arl_bot.safefile import UntrustedFileError
from arl_bot.sandbox import limit_note
from arl_bot.trusted import copy_trusted


class CommandOptions(PluginOptions):
    """The command evaluator takes no `evaluate.options`: the command line says it all."""


class CommandEvaluator(Evaluator):
    """Runs `evaluate.command` with `{seed}` filled in, in its own process group, under the sandbox.

    With `evaluate.score`, the command's output is never read for the metric: a second, trusted process
    (the scorer) runs from a copy of the files the agent cannot change and reads the command's outputs;
    only what the scorer prints or writes to its result file counts.
    """

    Options = CommandOptions

    def evaluate(self, tree: Path, seed: int, scratch: Path) -> SeedResult:
        """Run the command once (then the scorer, when configured) and parse the metric."""
        settings = self.loop.evaluate
        assert settings.command is not None
        command = settings.command.replace("{seed}", str(int(seed)))
        if settings.score is not None:
            return self._scored(tree, seed, scratch, command, settings.score)
        result_file = scratch / "result.json"
        env = {"AUTORESEARCH_SEED": str(seed), "AUTORESEARCH_RESULT": str(result_file),
               "AUTORESEARCH_SCRATCH": str(scratch)}
        run = self.sandbox.run(
            ["/bin/sh", "-c", command], cwd=tree,
            policy=policy.evaluation_policy(tree, scratch, env), timeout=settings.timeout,
        )
        return self._parse(run, seed, result_file, "")

    def _scored(self, tree: Path, seed: int, scratch: Path, command: str, score: str) -> SeedResult:
        settings = self.loop.evaluate
        outputs, result_dir = scratch / "outputs", scratch / "score"
        outputs.mkdir()
        result_dir.mkdir()
        env = {"AUTORESEARCH_SEED": str(seed), "AUTORESEARCH_SCRATCH": str(outputs),
               "AUTORESEARCH_OUTPUTS": str(outputs)}
        run = self.sandbox.run(
            ["/bin/sh", "-c", command], cwd=tree,
            policy=policy.evaluation_policy(tree, outputs, env), timeout=settings.timeout,
        )
        failed = _failure(run, settings.timeout)
        if failed:
            return SeedResult(seed, None, failed, run.tail(), run.duration_s)
        try:
            source = copy_trusted(tree, self.loop, scratch / "trusted")
        except UntrustedFileError as exc:
            return SeedResult(seed, None, f"the trusted files could not be copied: {exc.message}", run.tail(),
                              run.duration_s)
        result_file = result_dir / "result.json"
        env = {"AUTORESEARCH_SEED": str(seed), "AUTORESEARCH_OUTPUTS": str(outputs),
               "AUTORESEARCH_RESULT": str(result_file)}
        scored = self.sandbox.run(
            ["/bin/sh", "-c", score.replace("{seed}", str(int(seed)))], cwd=source,
            policy=policy.score_policy(source, outputs, result_dir, env), timeout=settings.timeout,
        )
        return self._parse(scored, seed, result_file, run.tail(), run.duration_s, "the scorer ", run.stdout)

    def _parse(self, run: ProcessResult, seed: int, result_file: Path, before: str, spent: float = 0.0,
               who: str = "", before_stdout: str = "") -> SeedResult:
        log = f"{before}\n--- score ---\n{run.tail()}" if before else run.tail()
        duration = spent + run.duration_s
        failed = _failure(run, self.loop.evaluate.timeout)
        if failed:
            return SeedResult(seed, None, who + failed, log, duration)
        try:
            value = parse_metric(run.stdout, self.loop.evaluate.parse, self.loop.metric.name, result_file)
            result_text = result_text_of(result_file)
        except MetricNotFound as exc:
            return SeedResult(seed, None, f"{who}gave no metric: {exc}" if who else f"no metric: {exc}",
                              log, duration)
        # the other numbers it reported (peak memory, latency): recorded, and what `guards.limits` judge
        numbers = guards.reported(f"{before_stdout}\n{run.stdout}", result_text, self.loop)
        return SeedResult(seed, value, "", log, duration, numbers)


def _failure(run: ProcessResult, timeout: float) -> str:
    """Why the run failed, with the sandbox's word on a limit it hit; empty when it exited 0."""
    if run.timed_out:
        return f"timed out after {timeout:g}s"
    if run.returncode != 0:
        note = limit_note(run)
        return f"exited with status {run.returncode}" + (f" ({note})" if note else "")
    return ""
