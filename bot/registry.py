"""Find agents, evaluators and sandboxes by name through entry points, built-ins the same way."""

from __future__ import annotations

import functools
import sys
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from .errors import PluginError

M = TypeVar("M")

GROUP_WORDS = {
    "arl_bot.agents": "agent kind",
    "arl_bot.evaluators": "evaluation backend",
    "arl_bot.sandboxes": "sandbox",
}


def _registered(group: str) -> tuple[EntryPoint, ...]:
    return _scan(group, tuple(sys.path))


@functools.lru_cache(maxsize=64)
def _scan(group: str, path: tuple[str, ...]) -> tuple[EntryPoint, ...]:
    # Reading every installed distribution's metadata takes milliseconds, and one config load asks for each
    # loop's agent, evaluator and sandbox; keyed by sys.path, a folder added to it (a test's plugin) is seen.
    return tuple(entry_points(group=group))


def available(group: str) -> list[str]:
    """Names registered in an entry-point group."""
    return sorted(ep.name for ep in _registered(group))


def load_plugin(group: str, name: str) -> Any:
    """The class registered as name, or a `module:Class` / `path/to/file.py:Class` reference."""
    for ep in _registered(group):
        if ep.name == name:
            return ep.load()
    if ":" in name:
        return _load_reference(name)
    word = GROUP_WORDS.get(group, group)
    raise PluginError(
        f"unknown {word} {name!r}",
        hint=f"available: {', '.join(available(group)) or '(none)'}; or give module:Class",
    )


def registered(group: str) -> dict[str, Any]:
    """name -> class of every plugin registered in group (imports their modules, which stay light)."""
    return {name: load_plugin(group, name) for name in available(group)}


def options_model(group: str, name: str, base: type[M]) -> type[M] | None:
    """The `Options` model the plugin registered as name declares; None for a reference or an unknown name.

    A plugin's module is imported to read it, so plugin modules import heavy libraries (torch, anthropic,
    optuna, docker) inside the functions that use them, never at the top.
    """
    if name not in available(group):
        return None
    try:
        plugin = load_plugin(group, name)
    except (ImportError, AttributeError) as exc:  # an installed plugin that is broken or half-installed
        raise PluginError(f"cannot load {GROUP_WORDS.get(group, group)} {name!r}: {exc}",
                          hint="reinstall the package that provides it") from None
    model = getattr(plugin, "Options", base)
    if not (isinstance(model, type) and issubclass(model, base)):
        raise PluginError(f"{GROUP_WORDS.get(group, group)} {name!r}: its Options do not derive from {base.__name__}",
                          hint=f"declare `class Options({base.__name__})` on {getattr(plugin, '__name__', plugin)}")
    return model


def _load_reference(reference: str) -> Any:
    target, _, attr = reference.rpartition(":")
    try:
        if target.endswith(".py"):
            import importlib.util
            import sys

            spec = importlib.util.spec_from_file_location(f"arl_plugin_{abs(hash(target))}", target)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {target}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = import_module(target)
        return getattr(module, attr)
    except (ImportError, AttributeError, OSError) as exc:
        raise PluginError(f"cannot load {reference!r}: {exc}",
                          hint="use module:Class or path/to/file.py:Class") from None
