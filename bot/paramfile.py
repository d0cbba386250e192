"""Read and write values in a parameter file (JSON, YAML or TOML), keeping the keys nobody searches."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ArlError

_MISSING = object()


class ParamFileError(ArlError):
    """A parameter file is missing, unreadable, or not shaped like the search space says."""


def read(path: Path) -> dict[str, Any]:
    """The file's contents as a mapping."""
    text = _text(path)
    try:
        if _format(path) == "json":
            data = json.loads(text)
        elif _format(path) == "yaml":
            data = yaml.safe_load(text) if text.strip() else {}
        else:
            import tomlkit

            data = tomlkit.parse(text).unwrap()
    except (ValueError, yaml.YAMLError) as exc:  # tomlkit's and json's parse errors are ValueErrors
        raise ParamFileError(f"{path.name} is not valid {_format(path).upper()}: {exc}",
                             hint="fix the file on the research branch") from None
    if not isinstance(data, dict):
        raise ParamFileError(f"{path.name} must hold a mapping of names to values, not {type(data).__name__}",
                             hint="write the parameters as key: value pairs")
    return data


def lookup(data: dict[str, Any], key: str) -> Any:
    """The value at a dotted key, or None when it is absent."""
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def write(path: Path, values: dict[str, Any]) -> None:
    """Set each dotted key to its value and write the file back; every other key stays as it was."""
    text = _text(path)
    fmt = _format(path)
    if fmt == "toml":
        import tomlkit

        doc = tomlkit.parse(text)
        for key, value in values.items():
            _set(doc, key, value, path)
        out = tomlkit.dumps(doc)
    else:
        data = read(path)
        for key, value in values.items():
            _set(data, key, value, path)
        if fmt == "json":
            out = json.dumps(data, indent=_json_indent(text), ensure_ascii=False) + "\n"
        else:
            out = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    path.write_text(out, encoding="utf-8")


def _set(data: Any, key: str, value: Any, path: Path) -> None:
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        child = node.get(part, _MISSING)
        if child is _MISSING:
            node[part] = {}
            child = node[part]
        if not isinstance(child, dict):
            raise ParamFileError(f"{path.name}: {key!r} needs {part!r} to be a mapping, but it is a value",
                                 hint="rename the key in `space:` or restructure the file")
        node = child
    node[leaf] = value


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".toml":
        return "toml"
    raise ParamFileError(f"{path.name}: unknown parameter file format {suffix!r}",
                         hint="use a .json, .yaml, .yml or .toml file")


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamFileError(f"parameter file {path} not found in the working tree",
                             hint="commit the file to the base branch, or fix `params_file:`") from None


def _json_indent(text: str) -> int | None:
    """The indentation the file already uses, so a rewrite changes only the searched values."""
    match = re.search(r"\n([ ]+)\S", text)
    return len(match.group(1)) if match else (None if text.strip() else 2)
