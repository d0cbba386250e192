"""The command evaluator: run the configured command, read the metric from its output."""

from __future__ import annotations

from pathlib import Path

from arl_bot import policy
from arl_bot.evaluate import Evaluator, MetricNotFound, SeedResult, parse_metric


class CommandEvaluator(Evaluator):
    """Runs `evaluate.command` with `{seed}` filled in, in its own process group, under the sandbox."""

    def evaluate(self, tree: Path, seed: int, scratch: Path) -> SeedResult:
        """Run the command once and parse its metric."""
        settings = self.loop.evaluate
        assert settings.command is not None
        command = settings.command.replace("{seed}", str(int(seed)))
        result_file = scratch / "result.json"
        env = {"AUTORESEARCH_SEED": str(seed), "AUTORESEARCH_RESULT": str(result_file),
               "AUTORESEARCH_SCRATCH": str(scratch)}
        run = self.sandbox.run(
            ["/bin/sh", "-c", command], cwd=tree,
            policy=policy.evaluation_policy(tree, scratch, env), timeout=settings.timeout,
        )
        log = run.tail()
        if run.timed_out:
            return SeedResult(seed, None, f"timed out after {settings.timeout:g}s", log, run.duration_s)
        if run.returncode != 0:
            return SeedResult(seed, None, f"exited with status {run.returncode}", log, run.duration_s)
        try:
            value = parse_metric(run.stdout, settings.parse, self.loop.metric.name, result_file)
        except MetricNotFound as exc:
            return SeedResult(seed, None, f"no metric: {exc}", log, run.duration_s)
        return SeedResult(seed, value, "", log, run.duration_s)
