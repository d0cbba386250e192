"""Recorded webhook payloads (tests/fixtures/webhooks) and running `arl-bot action` the way a runner does."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arl_bot.github.action import main as action_main
from arl_bot.github.outputs import read_outputs

from tests.github_standin import GitHubStandIn

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
REPO = "Codertocat/Hello-World"  # the repository the recorded payloads come from


def payload(name: str) -> dict[str, Any]:
    """A recorded payload, e.g. 'issue_comment.created.pull_request'."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def comment_payload(comment: dict[str, Any], number: int, *, fixture: str = "issue_comment.created.pull_request",
                    user: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recorded payload, carrying `comment` (as the stand-in returned it) on issue or PR `number`."""
    data = payload(fixture)
    data["comment"].update(id=comment["id"], body=comment["body"], user=user or comment["user"],
                           html_url=comment["html_url"], url=comment["url"])
    data["issue"]["number"] = number
    return data


@dataclass
class Result:
    """What one `arl-bot action` invocation left behind."""

    code: int
    outputs: dict[str, str]
    summary: str
    stdout: str
    stderr: str


def run_action(tmp_path: Path, standin: GitHubStandIn, cwd: Path, event: str, data: dict[str, Any],
               **env: str) -> Result:
    """Run `arl-bot action` in-process with the environment a runner gives it."""
    folder = tmp_path / f"runner-{len(list(tmp_path.glob('runner-*')))}"
    folder.mkdir()
    event_path = folder / "event.json"
    event_path.write_text(json.dumps(data))
    outputs, summary = folder / "output", folder / "summary"
    outputs.touch()
    summary.touch()
    full = {
        "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(event_path), "GITHUB_REPOSITORY": standin.full_name,
        "GITHUB_API_URL": standin.url, "GITHUB_SERVER_URL": "https://github.example", "GITHUB_RUN_ID": "4242",
        "GITHUB_TOKEN": standin.token, "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary),
        "ARL_GITHUB_TIMEOUT": "5", "ARL_GITHUB_PACE": "0", **env,
    }
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = action_main(full, cwd)
    return Result(code, read_outputs(outputs), summary.read_text(), out.getvalue(), err.getvalue())
