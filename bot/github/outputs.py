"""What the gate hands the research job (validated values only), and the Action's outputs and summary."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..events import EventError, count, loop_name
from ..sanitize import code_block, code_span, terminal_text

COMMANDS = ("continue", "revert", "rebase", "run")


@dataclass(frozen=True)
class Target:
    """One loop to run and the runner labels its job asks for."""

    loop: str
    runner: tuple[str, ...] = ("self-hosted", "gpu")
    runners: int = 1  # research jobs for this loop at once (`runners:`), sharing it through the remote


@dataclass(frozen=True)
class Order:
    """The gate's decision. Built only from validated values: loop names, integers, a fixed verb."""

    run: bool
    targets: tuple[Target, ...] = ()
    command: str = "run"  # continue | revert | rebase | run
    experiments: int | None = None
    experiment: int | None = None
    pr: int | None = None
    comment_id: int | None = field(default=None, compare=False)
    reply: int | None = field(default=None, compare=False)  # the gate's reply the research job edits as it goes
    shard: int = 0  # which of a loop's research jobs this is (0: the one that hands a long loop on)

    def outputs(self) -> dict[str, str]:
        """GITHUB_OUTPUT values of the gate: one matrix entry per research job.

        A loop with `runners: N` gets N entries when it runs experiments (a revert or a rebase is one
        change: one job); entries after the first carry `shard`, which names their concurrency group.
        """
        loops: list[dict[str, object]] = []
        for t in self.targets if self.run else ():
            jobs = t.runners if self.command in ("run", "continue") else 1
            loops += [{"loop": t.loop, "runner": list(t.runner), **({"shard": k} if k else {})} for k in range(jobs)]
        return {
            "run": "true" if self.run else "false",
            "loops": json.dumps(loops, separators=(",", ":")),
            "command": self.command,
            "experiments": "" if self.experiments is None else str(self.experiments),
            "experiment": "" if self.experiment is None else str(self.experiment),
            "pr": "" if self.pr is None else str(self.pr),
            "reply": "" if self.reply is None else str(self.reply),
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Order:
        """The research phase's order, from the ARL_* values the gate's outputs became."""
        command = (env.get("ARL_COMMAND") or "run").strip()
        if command not in COMMANDS:
            raise EventError(f"ARL_COMMAND {command[:20]!r} is not one of {', '.join(COMMANDS)}",
                             hint="pass the gate's `command` output unchanged")
        loop = loop_name(env.get("ARL_LOOP"), "ARL_LOOP")
        experiment = _integer(env.get("ARL_EXPERIMENT"), "ARL_EXPERIMENT")
        if command == "revert" and experiment is None:
            raise EventError("ARL_COMMAND is revert but ARL_EXPERIMENT is empty",
                             hint="pass the gate's `experiment` output")
        return cls(run=True, targets=(Target(loop),) if loop else (), command=command,
                   experiments=count(env.get("ARL_EXPERIMENTS"), "ARL_EXPERIMENTS"), experiment=experiment,
                   pr=_integer(env.get("ARL_PR"), "ARL_PR"), reply=_integer(env.get("ARL_REPLY"), "ARL_REPLY"),
                   shard=_integer(env.get("ARL_SHARD"), "ARL_SHARD") or 0)


def _integer(value: str | None, where: str) -> int | None:
    text = (value or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise EventError(f"{where}: {text[:20]!r} is not a whole number", hint="pass the gate's output unchanged")
    return int(text)


def write_outputs(path: str | None, values: Mapping[str, str]) -> None:
    """Append step outputs; the heredoc form with a random delimiter keeps any value from forging another."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for key, value in values.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            out.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(path: str | None, markdown: str) -> None:
    """Add Markdown to the job summary."""
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(markdown.rstrip("\n") + "\n\n")


def failure_summary(loop: str, message: str) -> str:
    """The job summary's section for a loop that failed: the error, whatever it quotes, in one code block."""
    return f"### arl-bot: {code_span(loop)} failed\n\n{code_block(message)}"


def annotate(level: str, message: str, stream: TextIO | None = None) -> None:
    """A workflow command (::error:: / ::warning::) with the message escaped as the runner expects."""
    text = terminal_text(message).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    print(f"::{level} title=arl-bot::{text}", file=stream or sys.stdout, flush=True)


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a GITHUB_OUTPUT file (tests and the local `all` phase read what was written)."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line:
            key, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            values[key] = "\n".join(lines[i + 1:end])
            i = end + 1
        else:
            if "=" in line:
                key, value = line.split("=", 1)
                values[key] = value
            i += 1
    return values
