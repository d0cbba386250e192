"""The JSON Schema `arl-bot schema` prints for editors, with every installed plugin's options."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import registry
from ..errors import PluginError
from ..names import LOOP_NAME
from .agent import AgentConfig
from .file import Config
from .plugins import PluginOptions
from .sandbox import SandboxSettings

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
