"""A pydantic ValidationError as a ConfigError a user can act on: file, line, key and a hint."""

from __future__ import annotations

import json
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from .agent import AgentConfig
from .base import TIMEOUT_MAX
from .evaluate import Evaluate
from .file import Config
from .loop import Loop
from .plugins import PluginOptions, plugin_model
from .sandbox import SandboxSettings

if TYPE_CHECKING:  # PyYAML is imported where a file is read: commands that read no config never load it
    import yaml


def config_error(exc: ValidationError, root: yaml.Node | None, path: str, *, data: Any = None,
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
    return ConfigError(message, path=path, line=line_of(root, loc), key=key, hint=hint)


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
            return plugin_model("arl_bot.agents", raw.get("kind", "command"), AgentConfig)
        if issubclass(model, Loop) and name == "sandbox":
            kind = raw if isinstance(raw, str) else raw.get("kind") if isinstance(raw, dict) else None
            return SandboxSettings if kind is None else plugin_model("arl_bot.sandboxes", kind, SandboxSettings)
        if issubclass(model, Evaluate) and name == "options" and isinstance(parent, dict):
            backend = parent.get("backend") or ("command" if parent.get("command") is not None else None)
            return plugin_model("arl_bot.evaluators", backend, PluginOptions)
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


def line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
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
