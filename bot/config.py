"""Load and validate `.autoresearch.yml`; every error names the file, the line and the key."""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from pathlib import Path, PurePosixPath
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import models_json_schema

from . import globs, names, noise, registry
from .errors import ConfigError, PluginError

if TYPE_CHECKING:  # PyYAML is imported where a file is read: commands that read no config never load it
    import yaml
from .names import LOOP_NAME, NEVER_PASSED

CONFIG_FILE = ".autoresearch.yml"
ALWAYS_PROTECTED = (CONFIG_FILE,)  # the agent may never rewrite its own rules


def _int_is_float(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # a 400-digit integer: float() raises instead of giving inf
            raise ValueError(f"{len(str(abs(value)))}-digit number is too large") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {value}")
    return value


# Strict models refuse an int where a float is due; YAML writes `timeout: 600`, so numbers accept ints.
# No number in the config means anything as .inf or .nan: an infinite timeout or budget never ends a
# phase, a NaN target is never reached; `null` is how a budget says "no limit".
Number = Annotated[float, BeforeValidator(_int_is_float), Field(allow_inf_nan=False)]
_DEVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:.-]{0,63}")  # an index (0), a UUID (GPU-…) or MIG-…


def _device_id(value: Any) -> Any:
    """A device slot as CUDA_VISIBLE_DEVICES takes it: `0` and `"0"` alike, never a list or a comma."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if isinstance(value, str) and not _DEVICE.fullmatch(value):
        # A comma would hand one evaluation several GPUs, and another slot could name the same ones.
        raise ValueError(f"{value!r} is not one device: give an index (0) or a UUID (GPU-…), one per slot")
    return value


DAY = 86_400.0
TIMEOUT_MAX = 30 * DAY  # longer waits overflow the OS's timers (threading refuses ~1e10 s) and never end in practice
PID_MAX_LIMIT = 4_194_304  # the most processes Linux can ever have (kernel PID_MAX_LIMIT on 64-bit)


class _Strict(BaseModel):
    # defer_build: a model's validator is built when it first validates, not at import; `arl-bot results`
    # and `--version` never validate a config, and import this module without paying for ~30 schemas.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


M = TypeVar("M", bound=BaseModel)


class PluginOptions(_Strict):
    """What an evaluation backend accepts under `evaluate.options`; a backend declares its own subclass as `Options`."""


class AnyOptions(PluginOptions):
    """The options of a backend that declares none: any key, left for the backend to read."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


_OPEN: dict[type[BaseModel], type[BaseModel]] = {}


def open_model(base: type[M]) -> type[M]:
    """base, taking any further key: a `module:Class` plugin is imported when the run starts, not at load."""
    if base not in _OPEN:
        _OPEN[base] = type(f"Any{base.__name__}", (base,), {
            "model_config": {**base.model_config, "extra": "allow"}, "__module__": base.__module__})
    return _OPEN[base]  # type: ignore[return-value]  # keyed by base: the value derives from it


def _plugin_model(group: str, name: Any, base: type[M]) -> type[M]:
    """The options model of the plugin registered as name; base with any key for a reference or unknown name.

    Unknown names are refused by the `kind`/`backend` validators, with a "did you mean"; accepting the other
    keys meanwhile keeps that the error reported, not an "unknown key" it would cause.
    """
    try:
        model = registry.options_model(group, name, base) if isinstance(name, str) else None
    except PluginError as exc:
        raise ValueError(f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from None
    return model or open_model(base)


def plugin_options(model: type[M], given: BaseModel | dict[str, Any], key: str) -> M:
    """given (a loop's section) as the plugin's own model; a bad key is a ConfigError that names it.

    Registered plugins' options were already checked at load; this checks a `module:Class` plugin's, at run start.
    """
    if isinstance(given, model) and not (given.model_extra and model.model_config.get("extra") != "allow"):
        return given  # checked at load; keys a `module:Class` plugin's section was loaded with are checked below
    data = given.model_dump(by_alias=True, exclude_unset=True) if isinstance(given, BaseModel) else given
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        prefix = tuple(key.split("."))
        raise _config_error(exc, None, CONFIG_FILE, prefix=prefix, model=model) from None


class Metric(_Strict):
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


class Parse(_Strict):
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


class Evaluate(_Strict):
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
        _plugin_model("arl_bot.evaluators", backend, PluginOptions).model_validate(options)
        return options

    @model_validator(mode="after")
    def _command_or_backend(self) -> Evaluate:
        if (self.command is None) == (self.backend is None):
            raise ValueError("give exactly one of `command` or `backend`")
        return self


class Keep(_Strict):
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


NUMBER_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"  # a number an evaluation reports besides the metric


def _amount(value: Any) -> Any:
    """A change bound: a number in the value's own units, or a share of the best's value like `5%`."""
    if isinstance(value, str):
        text = value.strip()
        try:
            share = float(text[:-1]) if text.endswith("%") else math.nan
        except ValueError:
            share = math.nan
        if not math.isfinite(share) or share < 0:
            raise ValueError(f"{value!r} is not a percentage like `5%`; or give a number in the value's units")
        return text
    value = _int_is_float(value)
    if isinstance(value, float) and value < 0:
        raise ValueError(f"must be 0 or more, not {value}")
    return value


Amount = Annotated[str | float, BeforeValidator(_amount)]


class Check(_Strict):
    """A command that must exit 0, in the evaluation's sandbox, before a candidate may be kept."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")  # named in reasons, the record and the pull request
    command: str = Field(min_length=1)  # run in the evaluation's sandbox, on the tree the evaluation measured
    timeout: Number = Field(default=600.0, gt=0, le=TIMEOUT_MAX)  # seconds; a check that runs out fails


class Limit(_Strict):
    """A bound on one number the evaluation reports; the change bounds compare with the best kept state."""

    max: Number | None = None  # the value may be at most this
    min: Number | None = None  # the value must be at least this
    # At most this far above the best kept state's value: in its units, or a share like 5%.
    max_increase: Amount | None = None
    max_decrease: Amount | None = None  # at most this far below the best kept state's value
    parse: str | None = None  # a regex with one group, matched line by line against the evaluation's output

    @field_validator("parse")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return Parse._compiles(value)  # the same rule as evaluate.parse.regex

    @model_validator(mode="after")
    def _bounded(self) -> Limit:
        if self.max is None and self.min is None and self.max_increase is None and self.max_decrease is None:
            raise ValueError("a limit needs `max`, `min`, `max_increase` or `max_decrease`")
        return self


class Guards(_Strict):
    """What a keep must also pass: checks (commands) and limits (on the other numbers the evaluation reports)."""

    checks: list[Check] = Field(default_factory=list)
    limits: dict[Annotated[str, Field(pattern=NUMBER_NAME)], Limit] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> Guards:
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names):
            raise ValueError(f"check names must be unique: {names}")
        return self

    @property
    def active(self) -> bool:
        """Whether any guard is configured."""
        return bool(self.checks or self.limits)


class ReadyCheck(_Strict):
    """When a service counts as up: its port accepts connections, or a command exits 0."""

    port: int | None = Field(default=None, ge=1, le=65535)  # up when this port accepts connections
    command: str | None = None  # up when this command exits 0


class Service(_Strict):
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


class PriceConfig(_Strict):
    """An explicit model price in USD per million tokens; cache prices default to Anthropic's multipliers."""

    input: Number = Field(ge=0)  # USD per million input tokens
    output: Number = Field(ge=0)  # USD per million output tokens
    cache_write: Number | None = Field(default=None, ge=0)  # default: 1.25 x input
    cache_read: Number | None = Field(default=None, ge=0)  # default: 0.1 x input



def _known(group: str, name: str) -> str:
    """name, when a plugin is registered under it in group or it is a `module:Class` reference."""
    if ":" in name:  # module:Class or path/to/file.py:Class, loaded when the run starts
        return name
    known = registry.available(group)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        guess = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown {registry.GROUP_WORDS[group]} {name!r}{guess} "
                         f"(known: {', '.join(known)}, or module:Class)")
    return name


def _no_github_token(variables: list[str]) -> list[str]:
    leaked = [name for name in variables if name in NEVER_PASSED]
    if leaked:
        raise ValueError(f"pass_env may not pass {leaked[0]}: the agent never gets the GitHub token")
    return variables


# Names of variables passed from the bot's environment to an agent's process (kinds command, claude-code).
PassEnv = Annotated[list[str], AfterValidator(_no_github_token)]


class AgentConfig(_Strict):
    """`agent:` keys every kind takes; each agent plugin's `Options` derives from it and adds its own keys."""

    kind: str = "command"  # the agent: claude-code, anthropic, command, optuna, or module:Class
    # Seconds per experiment; the agent's process group is killed after.
    timeout: Number = Field(default=1800.0, gt=0, le=TIMEOUT_MAX)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        return _known("arl_bot.agents", kind)

    def check_loop(self, loop: Loop) -> None:
        """Refuse settings the rest of the loop makes useless (raise ValueError); a plugin may override it."""


class Budget(_Strict):
    """When a run stops. Counts are per run; `target` is checked against the loop's best."""

    experiments: int | None = Field(default=20, ge=1)  # experiments per run
    hours: Number | None = Field(default=None, gt=0)  # hours per run
    cost_usd: Number | None = Field(default=None, ge=0)  # a hard cap on what the agent spends per run, in US dollars
    plateau: int | None = Field(default=None, ge=1)  # stop after this many attempts in a row without a keep
    target: Number | None = None  # stop once the best reaches this, in the goal's direction
    crashes: int | None = Field(default=5, ge=1)  # stop after this many crashes in a row



class PhaseSandbox(_Strict):
    """What one phase may do inside the sandbox; unset keys keep the phase's default."""

    network: bool | None = None  # default: the agent yes (it calls its API), the evaluation no
    memory_mb: int | None = Field(default=None, ge=16, le=2**40)  # the host's RAM is checked at run time
    cpu_seconds: int | None = Field(default=None, ge=1, le=2**31 - 1)  # CPU time per process
    processes: int | None = Field(default=4096, ge=8, le=PID_MAX_LIMIT)  # a fork bomb stops here


class SandboxSettings(_Strict):
    """`sandbox:` as a mapping; the plain string form is `kind` alone."""

    kind: str | None = None  # a registered sandbox (docker, bubblewrap, none); default: bubblewrap where installed
    agent: PhaseSandbox = Field(default_factory=PhaseSandbox)  # what the agent's phase may do
    # What the evaluation's phase (and the guards' checks) may do.
    evaluation: PhaseSandbox = Field(default_factory=PhaseSandbox)
    hidden: list[str] = Field(default_factory=list)  # more paths no phase may read (~ is the bot's HOME)
    # host paths (held-out labels) only the trusted scorer (`evaluate.score`) may read; hidden from the rest
    score_only: list[str] = Field(default_factory=list)
    # each sandbox plugin's `Options` derives from this model and adds its own keys (docker: image, gpus)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str | None) -> str | None:
        return kind if kind is None else _known("arl_bot.sandboxes", kind)


class StrategyConfig(_Strict):
    """Where each experiment starts and how bold it is (bot/strategy.py)."""

    explore_every: int | None = Field(default=5, ge=2)  # every Nth experiment is a bolder one; null: never
    diversify_after: int | None = Field(default=3, ge=1)  # non-keeps in a row that call for another parent
    top_k: int = Field(default=3, ge=1)  # diversify from one of the k best kept states besides the head


class LoopSchedule(_Strict):
    """How often the scheduled workflow continues the loop (`schedule: {every: 12h}`); unset: at every tick."""

    every: str | None = Field(default=None, pattern=r"^\s*\d+(\.\d+)?\s*[smhd]\s*$")  # 90m, 12h, 2d

    @property
    def every_s(self) -> float | None:
        """The cadence in seconds (None: whenever the schedule fires)."""
        if self.every is None:
            return None
        text = self.every.strip()
        return float(text[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[text[-1]]


class PromptConfig(_Strict):
    """How much history the agent's prompt carries (bot/prompt.py)."""

    recent: int = Field(default=10, ge=1, le=100)  # latest attempts shown in full
    history_tokens: int = Field(default=4000, ge=300)  # budget for the history, estimated as chars / 3


class Loop(_Strict):
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
    devices: list[Annotated[str, BeforeValidator(_device_id)]] | None = Field(default=None, min_length=1)
    # Research jobs the Action starts for this loop at once (each its own runner and concurrency group);
    # they share the loop through the remote.
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
        return _plugin_model("arl_bot.sandboxes", value["kind"], SandboxSettings).model_validate(value)

    @field_validator("agent", mode="before")
    @classmethod
    def _agent_options(cls, value: Any) -> Any:
        # Validated as the kind's own model: its errors keep their place (loops.<name>.agent.<key>).
        if not isinstance(value, dict):
            return value
        return _plugin_model("arl_bot.agents", value.get("kind", "command"), AgentConfig).model_validate(value)

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


Role = Literal["admin", "maintain", "write", "triage", "read"]
DEFAULT_ROLES: tuple[Role, ...] = ("admin", "maintain", "write")


class GitHubSettings(_Strict):
    """Who may steer loops from pull-request comments; how the research pull request opens and jobs hand over."""

    # Roles from the collaborator-permission API, never author_association (which says nothing about rights).
    allowed_roles: list[Role] = Field(default_factory=lambda: list(DEFAULT_ROLES), min_length=1)
    # Private repositories on GitHub Free and Pro have no draft pull requests; false opens a normal one.
    draft: bool = True
    # Hours one job runs before it hands the loop to a new job: GITHUB_TOKEN dies after 24 h and a GitHub-hosted
    # job after 6 h. Default: 5.5 on GitHub-hosted runners, 23 on self-hosted ones with GITHUB_TOKEN, none with App
    # credentials on self-hosted ones (keep it below the research job's timeout-minutes).
    job_hours: Number | None = Field(default=None, gt=0)


class Config(_Strict):
    """The whole file."""

    version: Literal[1] = 1  # the file format's version; 1 is the only one
    # Loop name -> loop; the name makes the research branch autoresearch/<name>.
    loops: dict[str, Loop] = Field(min_length=1)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    path: str = Field(default=CONFIG_FILE, exclude=True)
    _text: str = PrivateAttr(default="")  # the file's text, for the line numbers of later checks

    def loop(self, name: str | None) -> Loop:
        """The loop called name, or the only one when name is None."""
        if name is None:
            if len(self.loops) == 1:
                return next(iter(self.loops.values()))
            raise ConfigError(
                f"there are {len(self.loops)} loops ({', '.join(self.loops)}); say which",
                path=self.path,
                hint="pass --loop NAME",
            )
        if name not in self.loops:
            raise ConfigError(
                f"no loop named {name!r}", path=self.path, key="loops",
                hint=f"loops in this file: {', '.join(self.loops)}",
            )
        return self.loops[name]


PLUGIN_GROUPS: dict[str, type[BaseModel]] = {  # entry-point group -> the model its plugins' Options derive from
    "arl_bot.agents": AgentConfig, "arl_bot.evaluators": PluginOptions, "arl_bot.sandboxes": SandboxSettings}


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors can use to validate `.autoresearch.yml`, with every installed plugin's options."""
    plugins = {group: _options_models(group, base) for group, base in PLUGIN_GROUPS.items()}
    models: dict[type[BaseModel], None] = dict.fromkeys([Config, *(m for f in plugins.values() for m in f.values())])
    refs, top = models_json_schema([(m, "validation") for m in models], by_alias=True,
                                   ref_template="#/$defs/{model}")
    defs = top["$defs"]

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return dict(refs[(model, "validation")])

    schema: dict[str, Any] = {**defs.pop(ref(Config)["$ref"].rsplit("/", 1)[-1]), "$defs": defs}
    schema["properties"].pop("path", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "arl-bot .autoresearch.yml"
    schema["properties"]["loops"]["propertyNames"] = {"pattern": LOOP_NAME.pattern}
    loop = defs["Loop"]["properties"]
    # A plugin's section is checked against its own model, chosen by the kind (or backend) it names.
    agents = plugins["arl_bot.agents"]
    loop["agent"] = {"type": "object", "properties": {"kind": _kind_schema(agents, "command")},
                     "allOf": [_when("kind", name, ref(m), default=name == "command") for name, m in agents.items()]}
    sandboxes = plugins["arl_bot.sandboxes"]
    # `sandbox: bubblewrap` is read as {kind: bubblewrap}: show editors both forms.
    loop["sandbox"] = {"anyOf": [
        {"enum": sorted(sandboxes), "type": "string"},
        {"type": "object", "properties": {"kind": _kind_schema(sandboxes, None)},
         "allOf": [{"if": {"not": {"required": ["kind"]}}, "then": ref(SandboxSettings)},
                   *(_when("kind", name, ref(m)) for name, m in sandboxes.items())]},
        {"type": "null"}], "default": None}
    backends = plugins["arl_bot.evaluators"]
    for name in ("Evaluate", "Holdout"):
        defs[name]["allOf"] = [
            {"if": {"required": ["command"]}, "then": {"properties": {"options": ref(backends["command"])}}},
            *(_when("backend", backend, {"properties": {"options": ref(m)}}) for backend, m in backends.items())
        ] if "command" in backends else [
            _when("backend", backend, {"properties": {"options": ref(m)}}) for backend, m in backends.items()]
    keep = loop["keep"]  # `keep: sigma` is read as {rule: sigma}
    loop["keep"] = {"anyOf": [{"enum": ["mean", "sigma", "welch"], "type": "string"}, keep]}
    return schema


def _options_models(group: str, base: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """name -> Options model of every plugin installed in group; a plugin that fails to load is left out."""
    found = {}
    for name in registry.available(group):
        try:
            found[name] = registry.options_model(group, name, base) or base
        except PluginError:  # `arl-bot schema` still prints; loading a config with it says what is wrong
            continue
    return found


def _kind_schema(plugins: dict[str, type[BaseModel]], default: str | None) -> dict[str, Any]:
    return {"anyOf": [{"enum": sorted(plugins)}, {"type": "string", "pattern": ".:."}], "default": default,
            "description": "an installed plugin, or module:Class / path/to/file.py:Class"}


def _when(key: str, value: str, then: dict[str, Any], *, default: bool = False) -> dict[str, Any]:
    """JSON Schema's if/then: where key is value (or absent, for the default), then applies."""
    named: dict[str, Any] = {"properties": {key: {"const": value}}, "required": [key]}
    return {"if": {"anyOf": [named, {"not": {"required": [key]}}]} if default else named, "then": then}


def load(path: str | Path) -> Config:
    """Read and validate a config file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "no such file", path=str(path), hint="run `arl-bot init` to write one"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror or exc}", path=str(path),
                          hint="check that it is a readable file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded", path=str(path), line=line,
                          hint="save the file as UTF-8 (YAML's encoding); `iconv -f latin1 -t utf-8` converts it"
                          ) from None
    return parse(text, str(path))


NODE_BUDGET = 100_000  # YAML nodes after aliases are expanded: a real config has hundreds


def parse(text: str, path: str = CONFIG_FILE) -> Config:
    """Validate config text; path is only used in messages."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        # Compose first: aliases are still shared nodes there, so an alias bomb ("billion laughs") or a
        # recursive anchor is found by a bounded walk before construction would expand it.
        root = loader.get_single_node()
        _check_expansion(root, path)
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", path=path, line=line) from None
    except RecursionError:  # thousands of nested brackets: PyYAML's composer recurses once per level
        raise ConfigError("values nested too deeply to read", path=path,
                          hint="a config nests a few levels; look for a run of unclosed '[' or '{'") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(
            "expected a mapping with `version` and `loops`", path=path, line=1,
            hint="see `arl-bot init` for a commented example",
        )
    _reject_duplicate_keys(root, path)
    loops = data.get("loops")
    if isinstance(loops, dict):
        for name in loops:
            if not isinstance(name, str) or not LOOP_NAME.match(name):
                raise ConfigError(
                    f"loop name {name!r} must be lowercase letters, digits and '-'",
                    path=path, line=_line_of(root, ("loops", name)), key=f"loops.{name}",
                    hint="the name becomes the branch autoresearch/<name>",
                )
            if isinstance(loops[name], dict):
                loops[name] = {**loops[name], "name": name}
    try:
        cfg = Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise _config_error(exc, root, path, data=data) from None
    cfg._text = text
    for loop in cfg.loops.values():
        _check_editable(loop, root, path)
    return cfg


def _check_expansion(root: yaml.Node | None, path: str) -> None:
    """Refuse YAML whose aliases expand past NODE_BUDGET nodes, or that contains itself."""
    import yaml

    count = 0
    ancestors: set[int] = set()
    stack: list[yaml.Node] = []  # the nodes above the one being walked

    def walk(node: yaml.Node) -> None:
        nonlocal count
        count += 1
        if count > NODE_BUDGET:
            blamed = stack[1] if len(stack) > 1 else node  # the top-level value being expanded
            raise ConfigError(
                f"its aliases expand to more than {NODE_BUDGET:,} values", path=path,
                line=blamed.start_mark.line + 1,
                hint="a config needs no nested aliases (`*name`) of aliases; write the values out",
            )
        if id(node) in ancestors:
            raise ConfigError("an alias refers to the anchor it is inside (a value that contains itself)",
                              path=path, line=node.start_mark.line + 1,
                              hint="an alias (`*name`) may only refer to an anchor (`&name`) outside it")
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            ancestors.add(id(node))
            stack.append(node)
            for child in node.value:
                for item in child if isinstance(child, tuple) else (child,):
                    walk(item)
            stack.pop()
            ancestors.discard(id(node))

    if root is not None:
        walk(root)


def _example_path(pattern: str) -> str:
    """A path the glob matches, named so no protected glob can mean it unless it covers all such paths."""
    probe = "arl-probe"
    out = []
    for part in re.split(r"(\*\*|\*|\?|\[[^\]]*\])", pattern):
        if part in ("**", "*"):
            out.append(f"{probe}/{probe}" if part == "**" else probe)
        elif part == "?":
            out.append("q")
        elif part.startswith("[") and part.endswith("]") and len(part) > 1:
            out.append(next((c for c in "qz_0" if globs.matches(c, part)), "q"))
        else:
            out.append(part)
    return "".join(out)


def _check_editable(loop: Loop, root: yaml.Node | None, path: str) -> None:
    """Refuse a loop whose agent could change nothing: every edit would be thrown away as invalid."""
    if any(not globs.matches_any(_example_path(pattern), loop.all_protected) for pattern in loop.editable):
        return
    if all(globs.matches_any(_example_path(p), ALWAYS_PROTECTED) for p in loop.editable):
        message = f"`editable` names only {CONFIG_FILE}, which the agent may never change"
    else:
        message = "every `editable` glob is covered by `protected`"
    loc = ("loops", loop.name, "editable")
    raise ConfigError(f"{message}: the agent could change nothing, and every experiment would be invalid",
                      path=path, line=_line_of(root, loc), key=".".join(loc),
                      hint="list the files the agent should improve under `editable`, and only the "
                      "evaluation's under `protected`")


def _host_memory_mb() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return None


def _host_pid_max() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return None


def check_host(cfg: Config, loop: Loop) -> None:
    """Refuse sandbox limits this machine cannot grant (run where the loop runs: the gate's host differs)."""
    import yaml

    memory, pids = _host_memory_mb(), _host_pid_max()
    settings = loop.sandbox_settings
    for phase_name, phase in (("agent", settings.agent), ("evaluation", settings.evaluation)):
        problems = []
        if memory is not None and phase.memory_mb is not None and phase.memory_mb > memory:
            problems.append(("memory_mb", f"{phase.memory_mb} MB is more than this machine's {memory} MB of RAM"))
        if pids is not None and phase.processes is not None and phase.processes > pids:
            problems.append(("processes", f"{phase.processes} is more than the kernel allows ({pids}, "
                                          "/proc/sys/kernel/pid_max)"))
        for key, message in problems:
            loc = ("loops", loop.name, "sandbox", phase_name, key)
            root = yaml.compose(cfg._text, Loader=yaml.SafeLoader) if cfg._text else None
            raise ConfigError(f"{message}: the sandbox cannot grant it", path=cfg.path, line=_line_of(root, loc),
                              key=".".join(loc), hint="lower it, or run the loop on a bigger machine")


def _config_error(exc: ValidationError, root: yaml.Node | None, path: str, *, data: Any = None,
                  prefix: tuple[str, ...] = (), model: type[BaseModel] | None = None) -> ConfigError:
    """The first error as file:line:key; prefix places the keys of model (a plugin's options) in the file."""
    # An unknown key is usually a typo of a missing one: report the typo, it is the actual mistake.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    inner = tuple(part for part in error["loc"] if not _is_union_tag(part))
    loc = (*prefix, *inner)
    key = ".".join(str(part) for part in loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        hint = _known_keys_hint(_model_at(inner[:-1], model or Config, data))
    elif kind == "missing":
        message = f"missing required key {loc[-1]!r}"
        hint = "`arl-bot init` writes a commented example with every required key"
    else:
        message = error["msg"].removeprefix("Value error, ")
        got = error.get("input")
        if kind.endswith("_type") or kind.startswith("literal"):
            message = f"{message} (got {json.dumps(got, default=str)[:80]})"
        hint = _hint_for(loc) or "`arl-bot schema` prints what every key accepts"
    return ConfigError(message, path=path, line=_line_of(root, loc), key=key, hint=hint)


def _is_union_tag(part: int | str) -> bool:
    # pydantic puts validator and union names into error locations; they are not config keys.
    return isinstance(part, str) and part.startswith(("function-", "list[", "dict["))


def _inner_model(annotation: Any) -> tuple[type[BaseModel] | None, int]:
    """The model an annotation holds, and how many containers (a list's index, a dict's key) wrap it."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _inner_model(args[0])
    if origin in (Union, UnionType):
        found = [_inner_model(arg) for arg in args]
        return next(((model, depth) for model, depth in found if model is not None), (None, 0))
    if origin in (list, dict):
        model, depth = _inner_model(args[-1])
        return model, depth + 1
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, 0
    return None, 0


def _plugin_at(model: type[BaseModel], name: str, raw: Any, parent: Any) -> type[BaseModel] | None:
    """The model of a plugin's section, by the kind or backend the file names there."""
    try:
        if issubclass(model, Loop) and name == "agent" and isinstance(raw, dict):
            return _plugin_model("arl_bot.agents", raw.get("kind", "command"), AgentConfig)
        if issubclass(model, Loop) and name == "sandbox":
            kind = raw if isinstance(raw, str) else raw.get("kind") if isinstance(raw, dict) else None
            return SandboxSettings if kind is None else _plugin_model("arl_bot.sandboxes", kind, SandboxSettings)
        if issubclass(model, Evaluate) and name == "options" and isinstance(parent, dict):
            backend = parent.get("backend") or ("command" if parent.get("command") is not None else None)
            return _plugin_model("arl_bot.evaluators", backend, PluginOptions)
    except ValueError:  # a broken plugin: its own error is reported elsewhere
        return None
    return None


def _model_at(loc: tuple[int | str, ...], model: type[BaseModel], data: Any) -> type[BaseModel]:
    """The model whose keys belong at loc, walked from model by field type; a plugin's by what data names."""
    raw, index = data, 0
    while index < len(loc):
        part = loc[index]
        field = next((name for name, info in model.model_fields.items() if part in (name, info.alias)), None)
        if field is None:
            break
        parent, raw = raw, raw.get(part) if isinstance(raw, dict) else None
        sub, depth = _inner_model(model.model_fields[field].annotation)
        sub = _plugin_at(model, field, raw, parent) or sub
        for step in loc[index + 1:index + 1 + depth]:  # list indices and dict keys lead to the same model
            raw = raw.get(step) if isinstance(raw, dict) else raw[step] if (
                isinstance(raw, list) and isinstance(step, int) and step < len(raw)) else None
        index += 1 + depth
        if sub is None:
            break
        model = sub
    return model


def _known_keys_hint(model: type[BaseModel]) -> str:
    names = sorted(
        (field.alias or name) for name, field in model.model_fields.items() if name not in {"path", "name"}
    )
    return "known keys here: " + ", ".join(names)


def _hint_for(loc: tuple[int | str, ...]) -> str | None:
    last = str(loc[-1]) if loc else ""
    if last == "kind" and len(loc) >= 2 and loc[-2] == "sandbox":
        return "sandboxes come from installed plugins (entry points `arl_bot.sandboxes`); check the spelling"
    return {
        "goal": "use `minimize` or `maximize`",
        "evaluate": "e.g. evaluate: {command: \"python eval.py --seed {seed}\"}",
        "editable": "globs like \"model/**\" or \"train.py\", relative to the repository root",
        "protected": "globs like \"eval/**\", relative to the repository root",
        "sandbox": "use `bubblewrap`, `docker` or `none`",
        "version": "the only version is 1",
        "rule": "use `mean`, `sigma` or `welch`",
        "kind": "kinds come from installed plugins (entry points `arl_bot.agents`); check the spelling",
        "instructions": "e.g. instructions: AGENT.md (a file in the repository)",
        "timeout": f"seconds, at most {TIMEOUT_MAX:.0f} (30 days)",
    }.get(last)


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest node along loc that exists in the YAML tree."""
    import yaml

    node = root
    line = root.start_mark.line + 1 if root is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    found = (key_node, value_node)
                    break
            if found is None:
                return line
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _reject_duplicate_keys(node: yaml.Node | None, path: str) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                raise ConfigError(
                    f"key {key_node.value!r} appears twice", path=path,
                    line=key_node.start_mark.line + 1, key=key_node.value,
                    hint="YAML keeps only the last one; remove the other",
                )
            seen.add(key_node.value)
            _reject_duplicate_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, path)
