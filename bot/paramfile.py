"""Read and write values in a parameter file (JSON, YAML or TOML), keeping the keys nobody searches."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from . import safefile
from .errors import ArlError

_MISSING = object()
PARAM_BYTES = 10_000_000  # a parameter file bigger than this is refused


class ParamFileError(ArlError):
    """A parameter file is missing, unreadable, or not shaped like the search space says."""


def read(path: Path, *, root: Path | None = None) -> dict[str, Any]:
    """The file's contents as a mapping; root is the tree it lives in (no link below root is followed)."""
    text = _text(path, root)
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


def missing(data: dict[str, Any], keys: list[str]) -> list[str]:
    """The dotted keys that are not in data (a key whose value is null is there)."""
    absent = []
    for key in keys:
        node: Any = data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                absent.append(key)
                break
            node = node[part]
    return absent


def keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    """Every leaf's dotted key, in file order."""
    out: list[str] = []
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        out += keys(value, f"{dotted}.") if isinstance(value, dict) and value else [dotted]
    return out


def write(path: Path, values: dict[str, Any], *, root: Path | None = None) -> None:
    """Set each dotted key to its value and write the file back; every other key stays as it was."""
    text = _text(path, root)
    fmt = _format(path)
    if fmt == "toml":
        import tomlkit

        doc = tomlkit.parse(text)
        for key, value in values.items():
            _set(doc, key, value, path)
        out = tomlkit.dumps(doc)
    else:
        data = read(path, root=root)
        for key, value in values.items():
            _set(data, key, value, path)
        if fmt == "json":
            out = json.dumps(data, indent=_json_indent(text), ensure_ascii=False) + "\n"
        else:
            out = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    # Renamed over the old file, never written through it: a link there would aim the write elsewhere.
    folder, relative = _where(path, root)
    try:
        safefile.write_untrusted(folder, relative, out.encode("utf-8"))
    except safefile.UntrustedFileError as exc:
        raise ParamFileError(f"parameter file {exc.message}",
                             hint="fix `params_file:` or the folder it is in") from None


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


def _text(path: Path, root: Path | None) -> str:
    """The file's text, read as an untrusted file: it lives in the tree, which agents edit."""
    folder, relative = _where(path, root)
    try:
        data = safefile.read_untrusted(folder, relative, PARAM_BYTES)
    except safefile.MissingFileError:
        raise ParamFileError(f"parameter file {path} not found in the working tree",
                             hint="commit the file to the base branch, or fix `params_file:`") from None
    except safefile.UntrustedFileError as exc:
        raise ParamFileError(f"parameter file {exc.message}",
                             hint="make it a regular file on the research branch") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParamFileError(f"{path.name} is not UTF-8 text", hint="fix the file on the research branch") from None


def _where(path: Path, root: Path | None) -> tuple[Path, str]:
    """The trusted folder to start from and the path below it."""
    if root is None:
        return path.parent, path.name
    return root, path.relative_to(root).as_posix()


def _json_indent(text: str) -> int | None:
    """The indentation the file already uses, so a rewrite changes only the searched values."""
    match = re.search(r"\n([ ]+)\S", text)
    return len(match.group(1)) if match else (None if text.strip() else 2)
