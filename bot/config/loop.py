"""One research loop: what the agent may change, how the result is judged, and when a run stops."""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .. import globs, names
from .agent import AgentConfig
from .base import ALWAYS_PROTECTED, Number, Strict, device_id
from .evaluate import Evaluate, Holdout, Keep, Metric, Service
from .guards import Guards
from .plugins import plugin_model
from .sandbox import SandboxSettings


class Budget(Strict):
    """When a run stops. Counts are per run (a run of `runners: N` jobs shares experiments and cost_usd among
    them; hours is each job's own clock); `target` is checked against the loop's best."""

    experiments: int | None = Field(default=20, ge=1)  # experiments per run
    hours: Number | None = Field(default=None, gt=0)  # hours per run
    cost_usd: Number | None = Field(default=None, ge=0)  # a hard cap on what the agent spends per run, in US dollars
    plateau: int | None = Field(default=None, ge=1)  # stop after this many attempts in a row without a keep
    target: Number | None = None  # stop once the best reaches this, in the goal's direction
    crashes: int | None = Field(default=5, ge=1)  # stop after this many crashes in a row


class StrategyConfig(Strict):
    """Where each experiment starts and how bold it is (bot/strategy.py)."""

    explore_every: int | None = Field(default=5, ge=2)  # every Nth experiment is a bolder one; null: never
    diversify_after: int | None = Field(default=3, ge=1)  # non-keeps in a row that call for another parent
    top_k: int = Field(default=3, ge=1)  # diversify from one of the k best kept states besides the head


class LoopSchedule(Strict):
    """How often the scheduled workflow continues the loop (`schedule: {every: 12h}`); unset: at every tick."""

    every: str | None = Field(default=None, pattern=r"^\s*\d+(\.\d+)?\s*[smhd]\s*$")  # 90m, 12h, 2d

    @property
    def every_s(self) -> float | None:
        """The cadence in seconds (None: whenever the schedule fires)."""
        if self.every is None:
            return None
        text = self.every.strip()
        return float(text[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[text[-1]]


class PromptConfig(Strict):
    """How much history the agent's prompt carries (bot/prompt.py)."""

    recent: int = Field(default=10, ge=1, le=100)  # latest attempts shown in full
    history_tokens: int = Field(default=4000, ge=300)  # budget for the history, estimated as chars / 3


class Loop(Strict):
    """One research loop: what the agent may change and how the result is judged."""

    name: str = ""  # filled in from the loop's key under `loops`
    instructions: str = "AGENT.md"  # the file the agent reads first, relative to the repository root
    # Globs of the paths the agent may change; a change outside them is invalid.
    editable: list[str] = Field(min_length=1)
    # Globs no experiment may touch, put back from the base before each evaluation; .autoresearch.yml always is.
    protected: list[str] = Field(default_factory=list)
    metric: Metric
    evaluate: Evaluate
    agent: AgentConfig  # who edits the tree; the keys are those of its kind
    sandbox: SandboxSettings | None = None  # or the string form: docker | bubblewrap | none
    budget: Budget = Field(default_factory=Budget)
    keep: Keep = Field(default_factory=Keep)  # or the string form: mean | sigma | welch
    holdout: Holdout | None = None
    guards: Guards = Field(default_factory=Guards)  # checks and limits a keep must also pass
    services: list[Service] = Field(default_factory=list)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    # The labels of the runner the research job runs on.
    runner: list[str] = Field(default_factory=lambda: ["self-hosted", "gpu"])
    base: str | None = None  # base branch; default: the branch checked out when the loop starts
    schedule: LoopSchedule = Field(default_factory=LoopSchedule)  # how often the cron continues it
    workers: int = Field(default=1, ge=1, le=64)  # experiments in flight at once in one process
    # Device slots: each evaluation holds one, seen as CUDA_VISIBLE_DEVICES and AUTORESEARCH_DEVICE.
    # None: the GPUs visible to the runner, else one slot with no device set.
    devices: list[Annotated[str, BeforeValidator(device_id)]] | None = Field(default=None, min_length=1)
    # Research jobs the Action starts for this loop at once (each its own runner and concurrency group);
    # they share the loop through the remote, and its budget's experiments and cost_usd are split among them.
    runners: int = Field(default=1, ge=1, le=16)

    @field_validator("devices")
    @classmethod
    def _devices_unique(cls, devices: list[str] | None) -> list[str] | None:
        # Two slots naming one GPU would let two evaluations share it: the guarantee slots exist for.
        if devices is not None and len(set(devices)) != len(devices):
            raise ValueError(f"device slots must be distinct, got {devices}")
        return devices

    @field_validator("sandbox", mode="before")
    @classmethod
    def _sandbox_options(cls, value: Any) -> Any:
        value = {"kind": value} if isinstance(value, str) else value
        if not isinstance(value, dict) or value.get("kind") is None:
            return value  # the default sandbox is chosen at run time: only the keys every sandbox takes
        return plugin_model("arl_bot.sandboxes", value["kind"], SandboxSettings).model_validate(value)

    @field_validator("agent", mode="before")
    @classmethod
    def _agent_options(cls, value: Any) -> Any:
        # Validated as the kind's own model: its errors keep their place (loops.<name>.agent.<key>).
        if not isinstance(value, dict):
            return value
        return plugin_model("arl_bot.agents", value.get("kind", "command"), AgentConfig).model_validate(value)

    @field_validator("keep", mode="before")
    @classmethod
    def _keep_string(cls, value: Any) -> Any:
        return {"rule": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _noise_needs_runs(self) -> Loop:
        runs = len(self.evaluate.seeds) * self.evaluate.baseline_repeats
        if self.keep.rule != "mean" and runs < 2:
            raise ValueError(f"keep rule {self.keep.rule!r} needs a noise estimate: give two or more "
                             "`evaluate.seeds`, or `evaluate.baseline_repeats: 2` or more")
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique: {names}")
        return self

    @model_validator(mode="after")
    def _score_only_needs_a_scorer(self) -> Loop:
        score_only = self.sandbox_settings.score_only
        relative = [p for p in score_only if not p.startswith(("/", "~"))]
        if relative:
            raise ValueError(f"sandbox.score_only takes host paths (absolute or ~/...), not {relative[0]!r}: "
                             "files in the repository are readable by the agent wherever the scorer runs")
        if score_only and self.evaluate.score is None and (self.holdout is None or self.holdout.score is None):
            raise ValueError("sandbox.score_only needs a trusted scorer to read it: set `evaluate.score` "
                             "(or `holdout.score`)")
        return self

    @field_validator("editable", "protected")
    @classmethod
    def _globs(cls, patterns: list[str]) -> list[str]:
        for index, pattern in enumerate(patterns):
            try:
                globs.check(pattern)
            except globs.GlobSyntaxError as exc:
                raise ValueError(f"item {index} {pattern!r} is not a valid glob: {exc}") from exc
        return patterns

    @field_validator("instructions")
    @classmethod
    def _inside_repository(cls, path: str) -> str:
        # The file is read into the agent's prompt: `/etc/passwd` or `../../secrets` would send it out.
        if not path.strip() or PurePosixPath(path).is_absolute() or os.path.isabs(path) \
                or ".." in PurePosixPath(path).parts:
            raise ValueError(f"{path!r} must be a path inside the repository, relative to its root")
        return path

    @model_validator(mode="after")
    def _agent_fits_loop(self) -> Loop:
        self.agent.check_loop(self)  # e.g. optuna: its params_file must be editable
        return self

    @property
    def branch(self) -> str:
        """The research branch."""
        return names.branch(self.name)

    @property
    def sandbox_settings(self) -> SandboxSettings:
        """The sandbox section, whichever form it was written in."""
        return self.sandbox or SandboxSettings()

    @property
    def all_protected(self) -> tuple[str, ...]:
        """Protected globs plus the files no experiment may ever touch."""
        return (*self.protected, *(self.holdout.protect if self.holdout else ()), *ALWAYS_PROTECTED)
