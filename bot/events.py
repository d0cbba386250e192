"""One Event type for every entry point (a comment, the schedule, a dispatch, the CLI), parsed purely."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import ArlError
from .names import LOOP_NAME

Kind = Literal["comment", "schedule", "dispatch", "cli", "other"]
DEFAULT_API = "https://api.github.com"
DEFAULT_SERVER = "https://github.com"


class EventError(ArlError):
    """The event or a value in it cannot be used."""

    exit_code = 2


@dataclass(frozen=True)
class Event:
    """What happened, as arl-bot needs it; comment fields are untrusted data."""

    kind: Kind
    name: str  # GITHUB_EVENT_NAME (or "cli")
    repository: str = ""
    action: str = ""  # issue_comment: created, edited, deleted
    comment_id: int | None = None
    comment_body: str = ""
    author: str = ""
    author_type: str = ""  # User, Bot, Organization
    number: int | None = None  # the issue or pull request commented on
    on_pull: bool = False  # whether that is a pull request
    loop: str | None = None  # dispatch / CLI: the loop asked for (validated)
    experiments: int | None = None  # dispatch / CLI: how many (validated)
    run_id: str = ""
    run_attempt: str = ""  # GITHUB_RUN_ATTEMPT: 2 and on when a person re-runs the workflow run's jobs
    server_url: str = DEFAULT_SERVER
    api_url: str = DEFAULT_API

    @property
    def run_url(self) -> str:
        """The link to this workflow run ('' outside Actions)."""
        if not self.run_id or not self.repository:
            return ""
        attempt = f"/attempts/{self.run_attempt}" if self.run_attempt not in ("", "1") else ""
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}{attempt}"

    @property
    def job_run_id(self) -> str:
        """What tells this job's attempts apart in the record: a re-run keeps GITHUB_RUN_ID, not the attempt."""
        return self.run_id + (f"-{self.run_attempt}" if self.run_attempt not in ("", "1") else "")

    @property
    def from_bot(self) -> bool:
        """Whether a bot wrote the comment (GitHub Apps, github-actions, and this bot acting as one)."""
        return self.author_type == "Bot" or self.author.endswith("[bot]")


def loop_name(value: str | None, where: str) -> str | None:
    """A validated loop name, or None when empty."""
    value = (value or "").strip()
    if not value:
        return None
    if not LOOP_NAME.match(value) or len(value) > 100:
        raise EventError(f"{where}: {value[:60]!r} is not a loop name (lowercase letters, digits and '-')",
                         hint="use a name from .autoresearch.yml")
    return value


def count(value: str | int | None, where: str) -> int | None:
    """A validated positive number of experiments, or None when empty."""
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 1000:
        raise EventError(f"{where}: {text[:20]!r} is not a number of experiments from 1 to 1000",
                         hint="give a whole number, or leave it empty to use the loop's budget")
    return int(text)


def parse(name: str, payload: Mapping[str, Any], env: Mapping[str, str]) -> Event:
    """Build the Event from the event name, its webhook payload and the runner's environment."""
    common: dict[str, Any] = {
        "name": name, "repository": env.get("GITHUB_REPOSITORY") or _repo_of(payload),
        "run_id": env.get("GITHUB_RUN_ID", ""), "run_attempt": env.get("GITHUB_RUN_ATTEMPT", ""),
        "server_url": (env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER).rstrip("/"),
        "api_url": (env.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/"),
    }
    if name == "issue_comment":
        comment = payload.get("comment") or {}
        issue = payload.get("issue") or {}
        user = comment.get("user") or {}
        return Event(
            kind="comment", action=str(payload.get("action", "")), comment_id=_int(comment.get("id")),
            comment_body=str(comment.get("body") or ""), author=str(user.get("login", "")),
            author_type=str(user.get("type", "")), number=_int(issue.get("number")),
            # GitHub sends comments on pull requests as issue comments with `issue.pull_request` set.
            on_pull=bool(issue.get("pull_request")), **common,
        )
    if name == "schedule":
        return Event(kind="schedule", experiments=count(env.get("ARL_EXPERIMENTS"), "ARL_EXPERIMENTS"), **common)
    if name == "workflow_dispatch":
        inputs = payload.get("inputs") or {}
        return Event(
            kind="dispatch",
            loop=loop_name(env.get("ARL_LOOP") or str(inputs.get("loop") or ""), "the `loop` input"),
            experiments=count(env.get("ARL_EXPERIMENTS") or inputs.get("experiments"), "the `experiments` input"),
            **common,
        )
    return Event(kind="other", **common)


def from_env(env: Mapping[str, str]) -> Event:
    """The Event a runner describes through GITHUB_EVENT_NAME and GITHUB_EVENT_PATH."""
    name = env.get("GITHUB_EVENT_NAME", "")
    if not name:
        return Event(kind="cli", name="cli", loop=loop_name(env.get("ARL_LOOP"), "ARL_LOOP"),
                     experiments=count(env.get("ARL_EXPERIMENTS"), "ARL_EXPERIMENTS"),
                     repository=env.get("GITHUB_REPOSITORY", ""),
                     api_url=(env.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/"))
    path = env.get("GITHUB_EVENT_PATH", "")
    payload: dict[str, Any] = {}
    if path:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EventError(f"cannot read the event payload {path}: {exc}",
                             hint="GITHUB_EVENT_PATH must name the JSON file the runner wrote") from None
    return parse(name, payload, env)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _repo_of(payload: Mapping[str, Any]) -> str:
    repo = payload.get("repository") or {}
    return str(repo.get("full_name", "")) if isinstance(repo, dict) else ""
