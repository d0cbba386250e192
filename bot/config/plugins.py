"""Plugins' options: the base models their `Options` derive from, and finding a plugin's model by name."""

from __future__ import annotations

import difflib
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .. import registry
from ..errors import PluginError
from .base import CONFIG_FILE, Strict

M = TypeVar("M", bound=BaseModel)


class PluginOptions(Strict):
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


def plugin_model(group: str, name: Any, base: type[M]) -> type[M]:
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
        from .errors import config_error  # here, not at the top: errors.py imports the models built on this module

        prefix = tuple(key.split("."))
        raise config_error(exc, None, CONFIG_FILE, prefix=prefix, model=model) from None


def known_plugin(group: str, name: str) -> str:
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
