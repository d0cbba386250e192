"""Load and validate `.autoresearch.yml`; every error names the file, the line and the key."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import globs
from .errors import ConfigError

CONFIG_FILE = ".autoresearch.yml"
LOOP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
ALWAYS_PROTECTED = (CONFIG_FILE,)  # the agent may never rewrite its own rules


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Metric(_Strict):
    """What is measured and which way is better."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    goal: Literal["minimize", "maximize"] = "minimize"
    min_delta: float = Field(default=0.0, ge=0.0)

    @field_validator("min_delta", mode="before")
    @classmethod
    def _int_is_float(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def better(self, a: float, b: float) -> bool:
        """Whether a beats b by more than min_delta in the goal's direction."""
        margin = (b - a) if self.goal == "minimize" else (a - b)
        return margin > self.min_delta

    def at_least(self, value: float, target: float) -> bool:
        """Whether value reaches target in the goal's direction."""
        return value <= target if self.goal == "minimize" else value >= target


class Parse(_Strict):
    """How the metric is read from an evaluation: a regex, a JSON key, or the last `name: value` line."""

    regex: str | None = None
    json_key: str | None = Field(default=None, alias="json")
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

    command: str | None = None
    backend: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    parse: Parse = Field(default_factory=Parse)
    timeout: float = Field(default=600.0, gt=0)
    seeds: list[int] = Field(default_factory=lambda: [42], min_length=1)
    short_circuit: bool = False

    @field_validator("timeout", mode="before")
    @classmethod
    def _int_is_float(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _command_or_backend(self) -> Evaluate:
        if (self.command is None) == (self.backend is None):
            raise ValueError("give exactly one of `command` or `backend`")
        return self


class AgentConfig(_Strict):
    """Which agent edits the tree, and its knobs."""

    kind: str = "command"
    command: str | None = None
    timeout: float = Field(default=1800.0, gt=0)
    model: str | None = None
    max_turns: int | None = Field(default=None, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timeout", mode="before")
    @classmethod
    def _int_is_float(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _command_needs_command(self) -> AgentConfig:
        if self.kind == "command" and not self.command:
            raise ValueError("agent kind `command` needs `command:` (the program to run)")
        return self


class Budget(_Strict):
    """When a run stops. Counts are per run; `target` is checked against the loop's best."""

    experiments: int | None = Field(default=20, ge=1)
    hours: float | None = Field(default=None, gt=0)
    cost_usd: float | None = Field(default=None, ge=0)
    plateau: int | None = Field(default=None, ge=1)
    target: float | None = None
    crashes: int | None = Field(default=5, ge=1)

    @field_validator("hours", "cost_usd", "target", mode="before")
    @classmethod
    def _int_is_float(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Loop(_Strict):
    """One research loop: what the agent may change and how the result is judged."""

    name: str = ""
    instructions: str = "AGENT.md"
    editable: list[str] = Field(min_length=1)
    protected: list[str] = Field(default_factory=list)
    metric: Metric
    evaluate: Evaluate
    agent: AgentConfig
    sandbox: Literal["docker", "bubblewrap", "none"] | None = None
    budget: Budget = Field(default_factory=Budget)
    runner: list[str] = Field(default_factory=lambda: ["self-hosted", "gpu"])
    base: str | None = None  # base branch; default: the branch checked out when the loop starts

    @field_validator("editable", "protected")
    @classmethod
    def _globs(cls, patterns: list[str]) -> list[str]:
        for index, pattern in enumerate(patterns):
            try:
                globs.check(pattern)
            except globs.GlobSyntaxError as exc:
                raise ValueError(f"item {index} {pattern!r} is not a valid glob: {exc}") from exc
        return patterns

    @property
    def branch(self) -> str:
        """The research branch."""
        return f"autoresearch/{self.name}"

    @property
    def all_protected(self) -> tuple[str, ...]:
        """Protected globs plus the files no experiment may ever touch."""
        return (*self.protected, *ALWAYS_PROTECTED)


class Config(_Strict):
    """The whole file."""

    version: Literal[1] = 1
    loops: dict[str, Loop] = Field(min_length=1)
    path: str = Field(default=CONFIG_FILE, exclude=True)

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


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors can use to validate `.autoresearch.yml`."""
    schema = Config.model_json_schema(by_alias=True)
    schema["properties"].pop("path", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "arl-bot .autoresearch.yml"
    schema["properties"]["loops"]["propertyNames"] = {"pattern": LOOP_NAME.pattern}
    return schema


def load(path: str | Path) -> Config:
    """Read and validate a config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "no such file", path=str(path), hint="run `arl-bot init` to write one"
        ) from None
    return parse(text, str(path))


def parse(text: str, path: str = CONFIG_FILE) -> Config:
    """Validate config text; path is only used in messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", path=path, line=line) from None
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
        return Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise _config_error(exc, root, path) from None


def _config_error(exc: ValidationError, root: yaml.Node | None, path: str) -> ConfigError:
    # An unknown key is usually a typo of a missing one: report the typo, it is the actual mistake.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
    key = ".".join(str(part) for part in loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        hint = _known_keys_hint(loc)
    elif kind == "missing":
        message = f"missing required key {loc[-1]!r}"
        hint = None
    else:
        message = error["msg"].removeprefix("Value error, ")
        got = error.get("input")
        if kind.endswith("_type") or kind.startswith("literal"):
            message = f"{message} (got {json.dumps(got, default=str)})"
        hint = _hint_for(loc)
    return ConfigError(message, path=path, line=_line_of(root, loc), key=key, hint=hint)


def _is_union_tag(part: int | str) -> bool:
    # pydantic puts validator and union names into error locations; they are not config keys.
    return isinstance(part, str) and part.startswith(("function-", "list[", "dict["))


_MODEL_AT: dict[str, type[BaseModel]] = {"loops": Loop, "metric": Metric, "evaluate": Evaluate, "parse": Parse,
             "agent": AgentConfig, "budget": Budget}


def _known_keys_hint(loc: tuple[int | str, ...]) -> str:
    model: type[BaseModel] = Config
    if len(loc) >= 2:
        parent = str(loc[-3]) if len(loc) >= 3 and loc[-3] == "loops" else str(loc[-2])
        model = _MODEL_AT.get(parent, Loop if len(loc) == 3 and loc[0] == "loops" else Config)
    names = sorted(
        (field.alias or name) for name, field in model.model_fields.items() if name not in {"path", "name"}
    )
    return "known keys here: " + ", ".join(names)


def _hint_for(loc: tuple[int | str, ...]) -> str | None:
    last = str(loc[-1]) if loc else ""
    return {
        "goal": "use `minimize` or `maximize`",
        "evaluate": "e.g. evaluate: {command: \"python eval.py --seed {seed}\"}",
        "editable": "globs like \"model/**\" or \"train.py\", relative to the repository root",
        "protected": "globs like \"eval/**\", relative to the repository root",
        "sandbox": "use `bubblewrap`, `docker` or `none`",
        "version": "the only version is 1",
    }.get(last)


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest node along loc that exists in the YAML tree."""
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


def finite(value: float) -> bool:
    """Whether a metric value can be compared at all."""
    return not (math.isnan(value) or math.isinf(value))
