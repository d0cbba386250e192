"""The metric and the evaluation that measures it: parsing, seeds, the keep rule, the holdout, services."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .. import globs, noise
from .base import TIMEOUT_MAX, Number, Strict
from .plugins import PluginOptions, plugin_model


class Metric(Strict):
    """What is measured and which way is better."""

    # As the evaluation reports it: a `name: value` line or a JSON key.
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    goal: Literal["minimize", "maximize"] = "minimize"  # which way is better
    min_delta: Number = Field(default=0.0, ge=0.0)  # a keep must beat the best by more than this

    @property
    def sign(self) -> float:
        """-1 when lower is better, +1 when higher is (bot/noise.py decides it for every goal)."""
        return noise.sign(self.goal)

    def at_least(self, value: float, target: float) -> bool:
        """Whether value reaches target in the goal's direction."""
        return self.sign * (value - target) >= 0


class Parse(Strict):
    """How the metric is read from an evaluation: a regex, a JSON key, or the last `name: value` line."""

    regex: str | None = None  # one capture group around the number, matched line by line
    json_key: str | None = Field(default=None, alias="json")  # a key of the JSON written to $AUTORESEARCH_RESULT
    file: str | None = None  # a result file (relative to the working tree) to read instead of stdout

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compiled = re.compile(value, re.MULTILINE)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
            if compiled.groups < 1:
                raise ValueError("the regex needs one capture group around the number")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> Parse:
        if self.regex is not None and self.json_key is not None:
            raise ValueError("give either regex or json, not both")
        return self


class Evaluate(Strict):
    """The fixed evaluation that turns a working tree into one score."""

    command: str | None = None  # a shell command run once per seed, `{seed}` filled in; or give `backend`
    backend: str | None = None  # an installed evaluator (python, pytest, torch-charlm, ...) or path/file.py:Class
    options: dict[str, Any] = Field(default_factory=dict)  # the backend's own keys
    parse: Parse = Field(default_factory=Parse)
    # Seconds per seed; the whole process group is killed after.
    timeout: Number = Field(default=600.0, gt=0, le=TIMEOUT_MAX)
    seeds: list[int] = Field(default_factory=lambda: [42], min_length=1)  # the score is the mean over these seeds
    short_circuit: bool = False  # skip the other seeds when the first is already clearly worse than the best
    short_circuit_sigmas: Number = Field(default=2.0, gt=0)  # "clearly worse": the first seed, by this many sigmas
    baseline_repeats: int = Field(default=1, ge=1, le=20)  # measure the baseline this many times for sigma
    parallel: int = Field(default=1, ge=1, le=64)  # seeds evaluated at once (several runs on one big GPU)
    # A trusted second step: run from the base's files only, in its own sandbox, never with the agent's
    # code; it reads what `command` left in $AUTORESEARCH_OUTPUTS and alone yields the metric.
    score: str | None = None
    validate_: list[Literal["python"]] = Field(default_factory=list, alias="validate")  # checks before any run

    @field_validator("options")
    @classmethod
    def _backend_options(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # `backend` is declared before `options`, so it is already checked; the dict stays as written and
        # the evaluator reads its typed copy (Evaluator.options).
        backend = info.data.get("backend") or ("command" if info.data.get("command") is not None else None)
        plugin_model("arl_bot.evaluators", backend, PluginOptions).model_validate(options)
        return options

    @model_validator(mode="after")
    def _command_or_backend(self) -> Evaluate:
        if (self.command is None) == (self.backend is None):
            raise ValueError("give exactly one of `command` or `backend`")
        return self


class Keep(Strict):
    """The keep rule (bot/noise.py): `mean`, `sigma` (beat the best by k sigma) or `welch` (a confidence)."""

    # `mean`: beat the best by min_delta; `sigma`: by k sigma; `welch`: a t-test's confidence.
    rule: Literal["mean", "sigma", "welch"] = "mean"
    k: Number = Field(default=2.0, gt=0)  # sigma: how many sigmas of run-to-run noise a gain must exceed
    confidence: Number = Field(default=0.95, gt=0.5, lt=1.0)  # welch: how sure the test must be


class Holdout(Evaluate):
    """A second evaluation the agent never sees; it guards against overfitting the first."""

    must_not_worsen: bool = False  # a keep also needs the holdout no worse than the best's (by > tolerance)
    tolerance: Number = Field(default=0.0, ge=0.0)  # how much worse than the best's holdout score a keep may be
    protect: list[str] = Field(default_factory=list)  # globs of its code and data, protected like `protected`

    @field_validator("protect")
    @classmethod
    def _protect_globs(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                globs.check(pattern)
            except globs.GlobSyntaxError as exc:
                raise ValueError(f"{pattern!r} is not a valid glob: {exc}") from exc
        return patterns


class ReadyCheck(Strict):
    """When a service counts as up: its port accepts connections, or a command exits 0."""

    port: int | None = Field(default=None, ge=1, le=65535)  # up when this port accepts connections
    command: str | None = None  # up when this command exits 0


class Service(Strict):
    """A command started on the runner before each evaluation and stopped after it."""

    # The evaluation gets AUTORESEARCH_SERVICE_<NAME>_HOST and _PORT.
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    command: str  # `{port}` is replaced by the port
    port: int | None = Field(default=None, ge=0, le=65535)  # 0: pick a free port
    ready: ReadyCheck = Field(default_factory=ReadyCheck)  # default: `port` accepts connections
    timeout: Number = Field(default=60.0, gt=0, le=TIMEOUT_MAX)  # seconds to become ready
    env: dict[str, str] = Field(default_factory=dict)  # more variables for the evaluation; `{port}` filled

    @model_validator(mode="after")
    def _has_check(self) -> Service:
        if self.port is None and self.ready.port is None and self.ready.command is None:
            raise ValueError("a service needs `port` or `ready: {port | command}` to know when it is up")
        return self
