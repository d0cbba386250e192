"""The optuna agent: no LLM, one Optuna trial per experiment over values in a parameter file.

The study lives in the record, not in a database: every proposal rebuilds it from the attempts so far
(each keeps its trial's parameters in `extra["optuna"]`), so a loop resumes on any machine with the
same knowledge. This is the only module that imports optuna.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field, model_validator

from .. import globs, paramfile, searchspace
from ..config import AgentConfig, Loop
from ..errors import ArlError
from ..record import Attempt
from ..searchspace import Param
from .base import Agent, AgentResult, AgentTask

if TYPE_CHECKING:
    import optuna

# Attempt.extra[EXTRA_KEY] = {"params": {...}, "start": {...}, "trial": n, "sampler": name}; "start" holds
# the values the trial started from, so a state no trial made (the baseline) is known after it moved on.
EXTRA_KEY = "optuna"
RETRIES = 20  # fresh samples drawn when one repeats a trial already measured
# Feedback from the record: a crash says the region is bad (pruned: TPE ranks it below every measured
# trial); an invalid or interrupted attempt says nothing about the objective (failed: TPE ignores it).
PRUNED = ("crash",)
FAILED = ("invalid", "interrupted")


@dataclass(frozen=True)
class Feedback:
    """One past attempt as a trial: state "complete", "pruned" or "failed", its value and parameters."""

    state: str
    value: float | None
    params: dict[str, Any]


@dataclass
class Fed:
    """What was fed back into the study, for the log."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # attempts whose parameters no longer fit the space

    def line(self) -> str:
        """One line saying how many trials came from the record."""
        total = sum(self.counts.values())
        parts = ", ".join(f"{n} {state}" for state, n in sorted(self.counts.items()))
        skipped = f"; {self.skipped} skipped (outside the current space)" if self.skipped else ""
        return f"fed back {total} trials from the record" + (f" ({parts})" if parts else "") + skipped


def feedback(history: tuple[Attempt, ...], space: dict[str, Param], parent: str,
             current: dict[str, Any]) -> tuple[list[Feedback], int]:
    """Past attempts as trials, and how many were skipped; pure, so tests can check the mapping.

    Kept states no trial made (the baseline, a keep by another agent) join as complete trials with
    the values they held: the study then knows how good its starting points already are.
    """
    out: list[Feedback] = []
    skipped = 0
    starts = {parent: current}  # commit -> the values its parameter file held
    for attempt in history:
        raw = attempt.extra.get(EXTRA_KEY)
        if not isinstance(raw, dict) or not isinstance(raw.get("params"), dict):
            continue
        if isinstance(raw.get("start"), dict):
            starts.setdefault(attempt.parent, raw["start"])
        params = _fitting(raw["params"], space)
        if params is None:
            skipped += 1
            continue
        out.append(_as_feedback(attempt, params))
    for attempt in history:
        sha = attempt.sha
        if sha is not None and sha in starts and attempt.metric is not None and EXTRA_KEY not in attempt.extra:
            values = _fitting({key: paramfile.lookup(starts[sha], key) for key in space}, space)
            if values is not None:
                out.append(Feedback("complete", attempt.metric, values))
    return out, skipped


def _fitting(params: dict[str, Any], space: dict[str, Param]) -> dict[str, Any] | None:
    """The parameters the current space knows, or None when one of them no longer fits it."""
    known = {key: value for key, value in params.items() if key in space}
    if not known or any(not space[key].contains(value) for key, value in known.items()):
        return None
    return known


def _as_feedback(attempt: Attempt, params: dict[str, Any]) -> Feedback:
    if attempt.status in ("keep", "discard", "baseline") and attempt.metric is not None:
        return Feedback("complete", attempt.metric, params)
    if attempt.status in PRUNED:
        return Feedback("pruned", None, params)
    return Feedback("failed", None, params)


class OptunaOptions(AgentConfig):
    """`agent:` keys of the optuna kind: one trial per experiment over values in a parameter file."""

    params_file: str | None = None  # JSON, YAML or TOML, relative to the repository root
    space: dict[str, Param] = Field(default_factory=dict)  # dotted key -> int/float/choice
    sampler: Literal["tpe", "random"] = "tpe"  # tpe models the results so far; random samples the space uniformly
    seed: int | None = 0  # with the experiment number, makes proposals reproducible; null: random
    startup_trials: int = Field(default=5, ge=0)  # random trials before TPE models the results

    @model_validator(mode="after")
    def _can_work(self) -> OptunaOptions:
        searchspace.check(self.params_file, self.space)
        return self

    def check_loop(self, loop: Loop) -> None:
        """The parameter file must be one the agent may change, or every trial is invalid."""
        path = self.params_file
        if path and (not globs.matches_any(path, loop.editable) or globs.matches_any(path, loop.all_protected)):
            raise ValueError(f"agent.params_file {path!r} must match `editable` and no `protected` glob, "
                             "or every trial would be thrown away as invalid")


class OptunaAgent(Agent):
    """Writes the next trial's values into `agent.params_file`; the bot measures them as usual."""

    kind = "optuna"
    Options = OptunaOptions
    config: OptunaOptions

    def propose(self, task: AgentTask) -> AgentResult:
        """Rebuild the study from the record, ask it for one trial and write its values."""
        lib = _optuna()
        config = self.config
        assert config.params_file is not None
        space = dict(config.space)
        path = task.tree / config.params_file
        current = paramfile.read(path, root=task.tree)
        absent = paramfile.missing(current, list(space))
        if absent:  # writing it would add a new key nothing reads, and the search would measure noise
            there = paramfile.keys(current)
            raise paramfile.ParamFileError(
                f"agent.space key{'s' if len(absent) > 1 else ''} {', '.join(map(repr, absent))} "
                f"{'are' if len(absent) > 1 else 'is'} not in {config.params_file}",
                hint=f"fix the spelling under `space:` (the file has {', '.join(there[:12]) or 'no keys'}"
                     f"{', ...' if len(there) > 12 else ''}), or add the key to the file on the base branch")
        trials, skipped = feedback(task.history, space, task.parent, current)
        fed = Fed(skipped=skipped)
        for past in trials:
            fed.counts[past.state] = fed.counts.get(past.state, 0) + 1
        # Explore mode asks the independent random sampler: a bolder jump than TPE's model would make.
        sampler_name = "random" if task.mode == "explore" else config.sampler
        study = self._study(lib, trials, space, sampler_name, task.experiment)
        distributions = {key: _distribution(lib, param) for key, param in space.items()}
        tried = [t.params for t in trials if t.state == "complete"]
        now = {key: paramfile.lookup(current, key) for key in space}
        for _ in range(RETRIES):
            trial = study.ask(distributions)
            values = {key: _plain(space[key], trial.params[key]) for key in space}
            if values != now and values not in tried:
                break
            study.tell(trial, state=lib.trial.TrialState.FAIL)  # a repeat teaches nothing: draw again
        paramfile.write(path, values, root=task.tree)
        shown = ", ".join(f"{key}={space[key].show(value)}" for key, value in values.items())
        log = "\n".join([fed.line(), f"sampler: {sampler_name} (seed {self._seed(task.experiment)})",
                         f"trial {trial.number}: {json.dumps(values)}", f"wrote {config.params_file}"])
        return AgentResult(
            description=f"optuna trial {trial.number}: {shown}", log=log,
            extra={EXTRA_KEY: {"params": values, "start": {k: v for k, v in now.items() if space[k].contains(v)},
                               "trial": trial.number, "sampler": sampler_name}},
        )

    def _study(self, lib: Any, trials: list[Feedback], space: dict[str, Param], sampler_name: str,
               experiment: int) -> optuna.study.Study:
        seed = self._seed(experiment)
        if sampler_name == "random":
            sampler = lib.samplers.RandomSampler(seed=seed)
        else:
            sampler = lib.samplers.TPESampler(seed=seed, n_startup_trials=self.config.startup_trials)
        study = lib.create_study(direction=self.loop.metric.goal, sampler=sampler)
        states = {"complete": lib.trial.TrialState.COMPLETE, "pruned": lib.trial.TrialState.PRUNED,
                  "failed": lib.trial.TrialState.FAIL}
        study.add_trials([
            lib.trial.create_trial(
                state=states[t.state], value=t.value, params=t.params,
                distributions={key: _distribution(lib, space[key]) for key in t.params},
            ) for t in trials
        ])
        return cast("optuna.study.Study", study)

    def _seed(self, experiment: int) -> int | None:
        # The study is rebuilt every experiment: a fixed seed alone would draw the same startup point
        # each time, so the experiment number varies it while keeping a rerun reproducible.
        return None if self.config.seed is None else self.config.seed + experiment


def _distribution(lib: Any, param: Param) -> Any:
    dist = lib.distributions
    if param.choice is not None:
        return dist.CategoricalDistribution(list(param.choice))
    low, high = param.bounds
    if param.kind == "int":
        return dist.IntDistribution(int(low), int(high), log=param.log, step=int(param.step or 1))
    return dist.FloatDistribution(low, high, log=param.log, step=param.step)


def _plain(param: Param, value: Any) -> Any:
    """A sampled value as the parameter file should hold it (no numpy scalars)."""
    if param.kind == "int":
        return int(value)
    if param.kind == "float":
        return float(value)
    return value


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ArlError("agent kind `optuna` needs the optuna package, which is not installed",
                       hint="pip install 'arl-bot[optuna]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the record and the log say what happened
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna
