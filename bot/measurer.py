"""Measure a tree the trustworthy way: seeds (in parallel, short-circuited), noise, keep rule, holdout, services."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import diagnose, noise
from .config import Loop
from .evaluate import Evaluator, Measurement, SeedResult, get_evaluator
from .git import Git
from .record import Attempt, Record, Status
from .services import ServiceError, Services, ServiceSandbox
from .trusted import export_trusted

# Told when a seed of the loop's own evaluation starts (result None) and ends; never for the holdout.
SeedHook = Callable[[int, SeedResult | None], None]
# Only our own wording of a failure goes into the record: a holdout run's output or a parse error quoting
# it could carry held-out labels (`'cat' is not a number`).
_OWN_FAILURE = re.compile(r"(?:the backend |the scorer |pytest: )?(?:exited with status -?\d+|timed out after \S+s)")
HOLDOUT_FAILED = "holdout evaluation failed"
HOLDOUT_LOG_CHARS = 4_000  # of a failed holdout run's log, printed to the console (never recorded)


@dataclass(frozen=True)
class Verdict:
    """A measured candidate and what the keep rule (and the holdout) made of it."""

    status: Status  # keep | discard | crash
    reason: str
    measurement: Measurement
    extra: dict[str, Any] = field(default_factory=dict)  # goes into Attempt.extra


class _Noise:
    """The latest noise estimate, folded over the attempts (see Record.fold)."""

    def __init__(self) -> None:
        self.sigma: float | None = None

    def add(self, attempt: Attempt) -> None:
        """Take one more attempt into account."""
        value = attempt.extra.get("noise", {}).get("sigma")
        if isinstance(value, int | float):
            self.sigma = float(value)


def noise_of(record: Record) -> float | None:
    """The latest run-to-run noise estimate in the record (measured with the baseline)."""
    return record.fold("measurer.noise", _Noise, _Noise.add).sigma


def values_of(attempt: Attempt) -> list[float]:
    """Every run that measured an attempt: all baseline repeats, else its per-seed values."""
    runs = attempt.extra.get("noise", {}).get("runs")
    if isinstance(runs, list) and runs:
        return [float(v) for run in runs for v in run if v is not None]
    values = [float(v) for v in attempt.seeds.values() if v is not None]
    return values or ([attempt.metric] if attempt.metric is not None else [])


def holdout_of(record: Record) -> float | None:
    """The holdout score of the newest kept state that has one."""
    for attempt in reversed(record.kept):
        value = attempt.extra.get("holdout", {}).get("metric")
        if isinstance(value, int | float):
            return float(value)
    return None


class Measurer:
    """Everything between "the tree is ready" and "keep or discard", for the loop and for `arl-bot eval`."""

    def __init__(self, loop: Loop, evaluator: Evaluator, *, on_seed: SeedHook | None = None,
                 console: Callable[[str], None] | None = None) -> None:
        self.loop = loop
        self.services = Services(loop.services)
        # Never changed here: with services up, each measurement evaluates through a copy bound to a
        # sandbox that carries the services' variables (a wrapper around the evaluator keeps working).
        self.evaluator = evaluator
        self.on_seed = on_seed
        self.console = console or _stderr  # where a failed holdout's log goes: the run's log, not the record
        self.holdout: Evaluator | None = None
        if loop.holdout is not None:
            self.holdout = get_evaluator(loop.model_copy(update={"evaluate": loop.holdout}), evaluator.sandbox)

    # -- the three occasions -------------------------------------------------------------------------
    def baseline(self, tree: Path, base: str | None = None) -> tuple[Measurement, dict[str, Any]]:
        """Every seed, `baseline_repeats` times: the baseline's score and the noise sigma.

        base is the commit whose trusted files the services start from (default: the tree's HEAD).
        """
        settings = self.loop.evaluate
        with self._up(tree, base) as (scratch, failed, bound):
            if failed is not None:
                return failed, {}
            runs: list[Measurement] = []
            for repeat in range(settings.baseline_repeats):
                measurement, _ = self._seeds(bound.evaluator, tree, settings.seeds, scratch / f"r{repeat}")
                runs.append(measurement)
                if measurement.error:
                    return measurement, {"eval_runs": sum(len(m.seeds) for m in runs)}
            merged = _merge_repeats(runs)
            values = [[s.metric for s in m.seeds] for m in runs]
            sigma = noise.sigma([v for run in values for v in run if v is not None])
            extra: dict[str, Any] = {
                "noise": {"sigma": sigma, "runs": values, "seeds": list(settings.seeds)},
                "eval_runs": sum(len(m.seeds) for m in runs),
                **self._samples(runs, kept=True),
            }
            if bound.holdout is not None:
                extra["holdout"] = self._holdout(bound.holdout, tree, scratch)
            return merged, extra

    def candidate(self, tree: Path, record: Record) -> Verdict:
        """Measure an experiment against the best state and decide with the loop's keep rule."""
        best = record.best
        assert best is not None and best.metric is not None
        with self._up(tree, record.meta.base_sha) as (scratch, failed, bound):
            if failed is not None:
                return Verdict("crash", failed.error, failed)
            return self._candidate(tree, record, best, scratch, bound)

    def at_end(self, tree: Path, record: Record) -> dict[str, Any]:
        """At the end of a run, the holdout of the final best, when it has none yet."""
        best = record.best
        if self.holdout is None or best is None or "holdout" in best.extra:
            return {}
        with self._up(tree, record.meta.base_sha) as (scratch, failed, bound):
            if failed is not None or bound.holdout is None:
                return {"holdout": {"experiment": best.experiment, "metric": None, "error": HOLDOUT_FAILED}}
            return {"holdout": {"experiment": best.experiment, **self._holdout(bound.holdout, tree, scratch)}}

    def measure(self, tree: Path, seeds: list[int], base: str | None = None) -> Measurement:
        """Plain measurement with the services up (for `arl-bot eval` and `diagnose --eval`)."""
        with self._up(tree, base) as (scratch, failed, bound):
            return failed if failed is not None else self._seeds(bound.evaluator, tree, seeds, scratch)[0]

    # -- pieces --------------------------------------------------------------------------------------
    def _candidate(self, tree: Path, record: Record, best: Attempt, scratch: Path, bound: _Bound) -> Verdict:
        settings, metric = self.loop.evaluate, self.loop.metric
        best_values = values_of(best)
        sigma = noise_of(record)
        spread = sigma if sigma is not None else noise.sigma(best_values)

        def clearly_worse(result: SeedResult) -> bool:
            return (settings.short_circuit and result.metric is not None and
                    noise.clearly_worse(metric.goal, result.metric, best_values, spread,
                                        settings.short_circuit_sigmas))

        measurement, skipped = self._seeds(bound.evaluator, tree, settings.seeds, scratch, clearly_worse)
        extra: dict[str, Any] = {"eval_runs": len(measurement.seeds)}
        if measurement.error or measurement.metric is None:
            extra.update(self._samples([measurement], kept=False))
            return Verdict("crash", measurement.error or "no metric", measurement, extra)
        if skipped:
            first = measurement.seeds[0]
            per_run = measurement.duration_s / max(1, len(measurement.seeds))
            extra.update(skipped_seeds=skipped, saved_eval_s=round(per_run * len(skipped), 3),
                         **self._samples([measurement], kept=False))
            reason = (f"short-circuit: seed {first.seed} gave {metric.name} {first.metric:.6g}, worse than the "
                      f"best's {noise.mean(best_values):.6g} by more than "
                      f"{settings.short_circuit_sigmas:g}σ (σ {spread:.4g}); skipped seeds {skipped}")
            return Verdict("discard", reason, measurement, extra)
        values = [s.metric for s in measurement.seeds if s.metric is not None]
        decision = noise.judge(self.loop.keep.rule, metric.goal, metric.name, values, best_values,
                               noise=sigma, min_delta=metric.min_delta, k=self.loop.keep.k,
                               level=self.loop.keep.confidence)
        extra["keep"] = {**decision.as_dict(), "sigma": sigma}
        status: Status = "keep" if decision.keep else "discard"
        reason = decision.reason
        if decision.keep and bound.holdout is not None:
            status, reason, extra["holdout"] = self._gate(bound.holdout, tree, record, scratch, reason)
        extra.update(self._samples([measurement], kept=status == "keep"))
        return Verdict(status, reason, measurement, extra)

    def _gate(self, holdout: Evaluator, tree: Path, record: Record, scratch: Path,
              reason: str) -> tuple[Status, str, dict[str, Any]]:
        """Run the holdout for a would-be keep; with `must_not_worsen`, a worse holdout turns it down.

        The reason says that the holdout turned a keep down, never by how much: reasons reach the agent.
        """
        assert self.loop.holdout is not None
        result = self._holdout(holdout, tree, scratch)
        if not self.loop.holdout.must_not_worsen:
            return "keep", reason, result
        reference = holdout_of(record)
        value = result.get("metric")
        if value is None:
            return "discard", f"{reason}; but the {result.get('error')}", result
        if reference is not None:
            worse = -noise.gain(self.loop.metric.goal, float(value), reference)
            if worse > self.loop.holdout.tolerance:
                return "discard", f"{reason}; but the holdout got worse: not kept, it may not generalise", result
        return "keep", reason, result

    def _holdout(self, holdout: Evaluator, tree: Path, scratch: Path) -> dict[str, Any]:
        """The holdout's numbers; of a failure only our own words, its log to the console alone."""
        assert self.loop.holdout is not None
        measurement, _ = self._seeds(holdout, tree, self.loop.holdout.seeds, scratch / "holdout", report=False)
        values = [s.metric for s in measurement.seeds if s.metric is not None]
        error = ""
        if measurement.error:
            own = _OWN_FAILURE.match(measurement.error)  # the status, without what follows it
            error = HOLDOUT_FAILED + (f" ({own.group(0)})" if own else "")
            self.console(f"{error}; its log, which is not recorded:\n{measurement.log[-HOLDOUT_LOG_CHARS:]}")
        return {"metric": measurement.metric, "seeds": measurement.per_seed, "error": error,
                "eval_s": round(measurement.duration_s, 3), "sigma": noise.sigma(values)}

    def _seeds(self, evaluator: Evaluator, tree: Path, seeds: list[int], scratch: Path,
               stop_after_first: Callable[[SeedResult], bool] | None = None,
               report: bool = True) -> tuple[Measurement, list[int]]:
        """Evaluate seeds (the first alone when it may short-circuit, the rest `parallel` at a time)."""
        results: list[SeedResult] = []
        pending = list(seeds)
        if stop_after_first is not None and len(pending) > 1:
            results.append(self._one(evaluator, tree, pending.pop(0), scratch, report))
            if results[0].error:
                return Measurement(tuple(results)), []
            if stop_after_first(results[0]):
                return Measurement(tuple(results)), pending
        workers = min(self.loop.evaluate.parallel, len(pending))
        if workers <= 1:
            for seed in pending:
                results.append(self._one(evaluator, tree, seed, scratch, report))
                if results[-1].error:  # the rest cannot rescue a crash
                    break
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="arl-seed") as pool:
                results += list(pool.map(lambda s: self._one(evaluator, tree, s, scratch, report), pending))
        return Measurement(tuple(results)), []

    def _one(self, evaluator: Evaluator, tree: Path, seed: int, scratch: Path, report: bool) -> SeedResult:
        folder = scratch / f"seed-{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        hook = self.on_seed if report else None
        if hook is not None:
            hook(seed, None)
        result = evaluator.evaluate(tree, seed, folder)
        died = self.services.check()
        if died is not None:  # whatever the evaluation printed, it ran without its service
            result = SeedResult(seed, None, died.message, f"{result.log}\n--- service log ---\n{died.log}",
                                result.duration_s)
        if hook is not None:
            hook(seed, result)
        return result

    def _samples(self, measurements: list[Measurement], kept: bool) -> dict[str, Any]:
        merged = diagnose.merge([s.samples for m in measurements for s in m.seeds])
        if not merged:
            return {}
        limit = diagnose.KEPT_LIMIT if kept else diagnose.OTHER_LIMIT
        return {"samples": diagnose.bounded(merged, self.loop.metric.goal, limit)}

    @contextmanager
    def _up(self, tree: Path, base: str | None) -> Iterator[tuple[Path, Measurement | None, _Bound]]:
        """A scratch folder, the services, and the evaluators bound to them for this measurement.

        Services start from base's trusted files, written from git's objects (never from tree, which
        the agent edited); a service that fails to start yields a crash measurement.
        """
        scratch = Path(tempfile.mkdtemp(prefix=f"arl-eval-{self.loop.name}-"))
        bound = _Bound(self.evaluator, self.holdout)
        try:
            with ExitStack() as stack:
                failed = None
                if self.loop.services:
                    try:
                        repo = Git(tree)
                        commit = repo.rev(base or "HEAD") or base or "HEAD"
                        source = export_trusted(repo, commit, self.loop, scratch / "service-root")
                        env = stack.enter_context(self.services.up(source, scratch / "services"))
                        bound = bound.under(env)
                    except ServiceError as exc:  # a crash of this experiment, with the service's log, not a hang
                        seed = self.loop.evaluate.seeds[0]
                        failed = Measurement((SeedResult(seed, None, exc.message, exc.log),))
                yield scratch, failed, bound
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True)
class _Bound:
    """The evaluators one measurement uses: the loop's own, bound to that measurement's services."""

    evaluator: Evaluator
    holdout: Evaluator | None

    def under(self, env: dict[str, str]) -> _Bound:
        """Copies that see env (and the host's loopback) in their evaluation phase."""
        if not env:
            return self
        holdout = self.holdout
        return _Bound(self.evaluator.using(ServiceSandbox(self.evaluator.sandbox, env)),
                      None if holdout is None else holdout.using(ServiceSandbox(holdout.sandbox, env)))


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _merge_repeats(runs: list[Measurement]) -> Measurement:
    """One SeedResult per seed: the mean over the repeats, the time of all of them."""
    merged = []
    for index, first in enumerate(runs[0].seeds):
        same = [m.seeds[index] for m in runs]
        values = [s.metric for s in same if s.metric is not None]
        merged.append(SeedResult(first.seed, noise.mean(values) if values else None, "", same[-1].log,
                                 sum(s.duration_s for s in same), first.metrics, first.samples))
    return Measurement(tuple(merged))
