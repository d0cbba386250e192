"""Parse `/autoresearch <verb> [args]` comment commands (pure: text in, a Command or a Problem out)."""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass

PREFIX = "/autoresearch"
VERBS = ("continue", "stop", "revert", "redirect", "rebase", "status", "help")
MAX_EXPERIMENTS = 1000  # a typo like `continue 10000` should not book a GPU for a month
MAX_REDIRECT = 2000  # characters of steering text kept (the sanitiser caps notes at the same length)
BOT_MARKER = "<!-- arl-bot:"  # every comment the bot writes carries it; such comments are never commands
_FENCE = re.compile(r"^\s*(```|~~~)")
_COMMAND_LINE = re.compile(re.escape(PREFIX) + r"(?=\s|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    """A well-formed command."""

    verb: str
    line: str  # the line as written, for quoting back
    experiments: int | None = None  # continue N (None: the loop's budget)
    experiment: int | None = None  # revert <experiment>
    text: str = ""  # redirect <text>


@dataclass(frozen=True)
class Problem:
    """A command the bot cannot run, and why, in words for the person who wrote it."""

    line: str
    reason: str


def command_lines(body: str) -> list[str]:
    """Lines that are commands: starting with /autoresearch, outside code blocks and quotes."""
    if BOT_MARKER in body:
        return []
    found: list[str] = []
    fenced = False
    for raw in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _FENCE.match(raw):
            fenced = not fenced
            continue
        line = raw.strip()
        # Quoted (">") and indented-code lines show a command, they do not give one.
        if fenced or line.startswith(">") or raw.startswith(("    ", "\t")):
            continue
        if _COMMAND_LINE.match(line):
            found.append(line)
    return found


def parse(body: str) -> Command | Problem | None:
    """The comment's command, a Problem explaining why it cannot run, or None when there is no command."""
    lines = command_lines(body)
    if not lines:
        return None
    if len(lines) > 1:
        return Problem(lines[0], f"one command per comment, and this comment has {len(lines)}; "
                                 "post each as a comment of its own")
    return parse_line(lines[0])


def parse_line(line: str) -> Command | Problem:
    """One command line (starting with /autoresearch)."""
    rest = line[len(PREFIX):].strip()
    parts = rest.split(None, 1)
    verb_text = parts[0] if parts else ""
    args_text = parts[1].strip() if len(parts) > 1 else ""
    verb = verb_text.lower()
    if not verb:
        return Problem(line, "there is no command after /autoresearch")
    if verb not in VERBS:
        close = difflib.get_close_matches(verb, VERBS, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        return Problem(line, f"unknown command `{_code(verb_text)}`{hint}")
    if verb == "redirect":
        text = _unquote(args_text)
        if not text:
            return Problem(line, "`redirect` needs text: `/autoresearch redirect try a smaller learning rate`")
        if len(text) > MAX_REDIRECT:
            return Problem(line, f"the redirect text is {len(text)} characters; keep it under {MAX_REDIRECT}")
        return Command("redirect", line, text=text)
    try:
        args = shlex.split(args_text)
    except ValueError as exc:
        return Problem(line, f"cannot read the arguments ({exc}); check the quotes")
    if verb == "continue":
        if len(args) > 1:
            return Problem(line, "`continue` takes at most one number: `/autoresearch continue 3`")
        if not args:
            return Command("continue", line)
        number = _number(args[0])
        if number is None or not 1 <= number <= MAX_EXPERIMENTS:
            return Problem(line, f"`continue` takes a number of experiments from 1 to {MAX_EXPERIMENTS}, "
                                 f"not `{_code(args[0])}`")
        return Command("continue", line, experiments=number)
    if verb == "revert":
        if len(args) != 1:
            return Problem(line, "`revert` takes one experiment number: `/autoresearch revert 7`")
        number = _number(args[0].removeprefix("#"))
        if number is None:
            return Problem(line, f"`revert` takes an experiment number, not `{_code(args[0])}`")
        if number == 0:
            return Problem(line, "experiment 0 is the baseline; it cannot be reverted")
        return Command("revert", line, experiment=number)
    if args:
        return Problem(line, f"`{verb}` takes no arguments")
    return Command(verb, line)


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


def _code(text: str) -> str:
    """Text safe inside a Markdown code span, short enough to quote."""
    text = text.replace("`", "'")
    return text if len(text) <= 40 else text[:39] + "…"
