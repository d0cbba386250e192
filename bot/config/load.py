"""Reading `.autoresearch.yml`: UTF-8, YAML with an alias budget, no duplicate keys, loop names, the models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from .. import globs
from ..errors import ConfigError
from ..names import LOOP_NAME
from .base import ALWAYS_PROTECTED, CONFIG_FILE
from .errors import config_error, line_of
from .file import Config
from .loop import Loop

if TYPE_CHECKING:  # PyYAML is imported where a file is read: commands that read no config never load it
    import yaml


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
                    path=path, line=line_of(root, ("loops", name)), key=f"loops.{name}",
                    hint="the name becomes the branch autoresearch/<name>",
                )
            if isinstance(loops[name], dict):
                loops[name] = {**loops[name], "name": name}
    try:
        cfg = Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise config_error(exc, root, path, data=data) from None
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
                      path=path, line=line_of(root, loc), key=".".join(loc),
                      hint="list the files the agent should improve under `editable`, and only the "
                      "evaluation's under `protected`")


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
