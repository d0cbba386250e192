"""Glob patterns for `editable` and `protected`: `*` stays in one folder, `**` crosses folders."""

from __future__ import annotations

import functools
import re

_SPECIAL = re.compile(r"(\*\*/|/\*\*$|\*\*|\*|\?|\[[^\]]*\])")


class GlobSyntaxError(ValueError):
    """A pattern that cannot be a path glob."""


def check(pattern: str) -> None:
    """Raise GlobSyntaxError when pattern is not a usable repository-relative glob."""
    if not pattern or not pattern.strip():
        raise GlobSyntaxError("empty pattern")
    if pattern.startswith("/"):
        raise GlobSyntaxError("patterns are relative to the repository root; drop the leading '/'")
    if ".." in pattern.split("/"):
        raise GlobSyntaxError("'..' would leave the repository")
    if pattern.count("[") != pattern.count("]"):
        raise GlobSyntaxError("unbalanced '[' ']'")
    _compile(pattern)


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    pos = 0
    for match in _SPECIAL.finditer(pattern):
        parts.append(re.escape(pattern[pos : match.start()]))
        token = match.group(0)
        if token == "**/":
            parts.append(r"(?:[^/]+/)*")
        elif token == "/**":
            parts.append(r"/.*")
        elif token == "**":
            parts.append(r".*")
        elif token == "*":
            parts.append(r"[^/]*")
        elif token == "?":
            parts.append(r"[^/]")
        else:
            body = token[1:-1]
            if body.startswith("!"):
                body = "^" + body[1:]
            parts.append(f"[{body}]")
        pos = match.end()
    parts.append(re.escape(pattern[pos:]))
    try:
        # A pattern that names a folder also covers everything inside it, as in .gitignore. DOTALL: git
        # stores names with newlines, and `eval/**` must cover `eval/a\nb.py` as it covers `eval/ab.py`.
        return re.compile("".join(parts) + r"(?:/.*)?", re.DOTALL)
    except re.error as exc:
        raise GlobSyntaxError(str(exc)) from exc


def matches(path: str, pattern: str) -> bool:
    """Whether a repository-relative path is covered by pattern."""
    return _compile(pattern).fullmatch(path) is not None


def matches_any(path: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """Whether any of patterns covers path."""
    return any(matches(path, p) for p in patterns)
