"""File tools for an in-process agent: list, read, write and edit, fenced to the tree and the loop's globs."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..globs import matches_any

READ_LIMIT = 100_000  # characters a single read returns; the model can page with offset/limit
LIST_LIMIT = 500  # entries a single listing returns
HIDDEN = (".git",)  # never listed, read or written, at any depth and in any case

SCHEMAS: list[dict[str, Any]] = [
    {"name": "list_files",
     "description": "List the files under a folder of the repository (recursively). Files you may change are "
                    "marked [editable].",
     "input_schema": {"type": "object", "properties": {
         "path": {"type": "string", "description": "folder relative to the repository root; default: the root"}}}},
    {"name": "read_file",
     "description": "Read a text file of the repository. Use offset and limit (in lines) for long files.",
     "input_schema": {"type": "object", "required": ["path"], "properties": {
         "path": {"type": "string", "description": "file path relative to the repository root"},
         "offset": {"type": "integer", "description": "first line to return, 1-based"},
         "limit": {"type": "integer", "description": "how many lines to return"}}}},
    {"name": "write_file",
     "description": "Create or overwrite a file with the given content. Only editable files may be written.",
     "input_schema": {"type": "object", "required": ["path", "content"], "properties": {
         "path": {"type": "string"}, "content": {"type": "string"}}}},
    {"name": "edit_file",
     "description": "Replace old_string with new_string in a file. old_string must appear exactly once unless "
                    "replace_all is true. Only editable files may be edited.",
     "input_schema": {"type": "object", "required": ["path", "old_string", "new_string"], "properties": {
         "path": {"type": "string"}, "old_string": {"type": "string"}, "new_string": {"type": "string"},
         "replace_all": {"type": "boolean"}}}},
]


class ToolRefused(Exception):
    """A tool call that is not executed; the message goes back to the model as an error result."""


@dataclass
class FileTools:
    """The tools over one working tree: reads anywhere in it, writes only editable, unprotected files."""

    root: Path
    editable: tuple[str, ...]
    protected: tuple[str, ...]

    def call(self, name: str, args: dict[str, Any]) -> tuple[str, bool]:
        """Run one tool call; (text for the model, whether it is an error)."""
        handlers: dict[str, Callable[..., str]] = {"list_files": self.list_files, "read_file": self.read_file,
                   "write_file": self.write_file, "edit_file": self.edit_file}
        handler = handlers.get(name)
        if handler is None:
            return f"unknown tool {name!r}", True
        try:
            return handler(**args), False
        except ToolRefused as exc:
            return str(exc), True
        except TypeError as exc:  # missing or unexpected arguments
            return f"bad arguments for {name}: {exc}", True
        except (OSError, UnicodeDecodeError) as exc:
            return f"{name} failed: {exc}", True

    def list_files(self, path: str = "") -> str:
        """Every file under path, one per line."""
        rel, target = self._resolve(path or ".", allow_root=True)
        if not target.is_dir():
            raise ToolRefused(f"{path!r} is not a folder")
        found: list[str] = []
        for folder, dirs, files in os.walk(target):
            dirs[:] = sorted(d for d in dirs if d.lower() not in HIDDEN)
            for name in sorted(files):
                if name.lower() in HIDDEN:  # a `.git` file (gitdir: pointer) is hidden like the folder
                    continue
                child = (Path(folder) / name).relative_to(self.root).as_posix()
                found.append(f"{child} [editable]" if self._may_write(child) else child)
        more = f"\n... and {len(found) - LIST_LIMIT} more" if len(found) > LIST_LIMIT else ""
        return "\n".join(found[:LIST_LIMIT]) + more if found else f"(no files under {rel or '.'})"

    def read_file(self, path: str, offset: int = 1, limit: int | None = None) -> str:
        """The text of a file, or a range of its lines."""
        _, target = self._resolve(path)
        if not target.is_file():
            raise ToolRefused(f"no such file: {path}")
        lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
        start = max(1, int(offset)) - 1
        chosen = lines[start : start + int(limit)] if limit is not None else lines[start:]
        text = "".join(chosen)
        if len(text) > READ_LIMIT:
            text = text[:READ_LIMIT] + f"\n[truncated at {READ_LIMIT} characters; read on with offset]"
        return text or "(empty)"

    def write_file(self, path: str, content: str) -> str:
        """Create or replace a file."""
        rel, target = self._resolve(path, writing=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        return f"wrote {rel} ({len(content)} characters)"

    def edit_file(self, path: str, old_string: str, new_string: str, replace_all: bool = False) -> str:
        """Replace text in a file."""
        rel, target = self._resolve(path, writing=True)
        if not target.is_file():
            raise ToolRefused(f"no such file: {path}; use write_file to create it")
        text = target.read_text(encoding="utf-8")
        count = text.count(old_string) if old_string else 0
        if count == 0:
            raise ToolRefused(f"old_string not found in {rel}")
        if count > 1 and not replace_all:
            raise ToolRefused(f"old_string appears {count} times in {rel}; give more context or replace_all")
        target.write_text(text.replace(old_string, new_string), encoding="utf-8")
        return f"edited {rel} ({count} replacement{'s' if count > 1 else ''})"

    def _may_write(self, rel: str) -> bool:
        return matches_any(rel, self.editable) and not matches_any(rel, self.protected)

    def _resolve(self, path: str, *, writing: bool = False, allow_root: bool = False) -> tuple[str, Path]:
        """The repository-relative path and the real file, or ToolRefused when it leaves the fence."""
        pure = PurePosixPath(str(path).strip())
        if pure.is_absolute():
            try:
                pure = pure.relative_to(PurePosixPath(self.root.resolve().as_posix()))
            except ValueError:
                raise ToolRefused(f"{path!r} is outside the repository; use paths relative to its root") from None
        if ".." in pure.parts:
            raise ToolRefused(f"{path!r}: '..' may not be used in paths")
        rel = pure.as_posix().strip("/")
        rel = "" if rel == "." else rel
        if not rel and not allow_root:
            raise ToolRefused("give a file path")
        # Not only the top: `model/sub/.git/config` would make model/sub a repository whose config
        # (an fsmonitor command, hooks) the bot's git reads.
        if any(part.lower() in HIDDEN for part in rel.split("/")):
            raise ToolRefused(f"{path!r} is off limits: no path may go through a .git entry")
        root = self.root.resolve()
        target = root / rel
        # A symlink could point at a protected file or out of the tree; the real path must be the named one.
        if (target.exists() and target.resolve() != target) or _any_link(root, target):
            raise ToolRefused(f"{path!r} goes through a symbolic link; links are not followed")
        if writing and not self._may_write(rel):
            why = "protected" if matches_any(rel, self.protected) else "not editable"
            raise ToolRefused(
                f"refused: {rel} is {why}. You may only change files matching "
                f"{', '.join(self.editable)} and never {', '.join(self.protected) or '(nothing)'}"
            )
        return rel, target


def _any_link(root: Path, target: Path) -> bool:
    """Whether any existing component between root and target is a symbolic link."""
    current = root
    for part in target.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return True
        if not current.exists():
            return False
    return False
