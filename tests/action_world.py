"""A repository, its bare remote and the GitHub stand-in, wired together for `arl-bot action` tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arl_bot.git import Git
from arl_bot.record import Record
from arl_bot.store import RecordStore
from arl_bot.sync import Remote

from tests.github_standin import GitHubStandIn
from tests.labs import Lab, git, make_lab
from tests.webhooks import Result, comment_payload, payload, run_action

VALUES = ["8", "9", "5", "6", "4", "7", "3", "2", "1"]


@dataclass
class World:
    """The lab (the runner's checkout), its remote, and GitHub."""

    tmp: Path
    lab: Lab
    github: GitHubStandIn

    def dispatch(self, experiments: int | None = None, loop: str = "", **env: str) -> Result:
        """A workflow_dispatch with its inputs."""
        data = payload("workflow_dispatch")
        data["inputs"] = {"loop": loop, "experiments": "" if experiments is None else str(experiments)}
        return run_action(self.tmp, self.github, self.lab.root, "workflow_dispatch", data, **env)

    def comment(self, number: int, body: str, login: str = "alice", *,
                fixture: str = "issue_comment.created.pull_request", user: dict[str, Any] | None = None,
                **env: str) -> tuple[Result, int]:
        """A person comments on issue or pull request `number`; the Action runs on the event."""
        made = self.github.add_comment(number, login, body)
        data = comment_payload(made, number, fixture=fixture, user=user)
        return run_action(self.tmp, self.github, self.lab.root, "issue_comment", data, **env), made["id"]

    def schedule(self, **env: str) -> Result:
        """The cron event (GitHub's payload names the schedule)."""
        return run_action(self.tmp, self.github, self.lab.root, "schedule", {"schedule": "17 */6 * * *"}, **env)

    def remote_log(self, branch: str = "autoresearch/demo") -> list[str]:
        """Subjects on a branch of the remote, newest first."""
        assert self.lab.remote is not None
        return git(self.lab.remote, "log", "--format=%s", branch).splitlines()

    def record(self, loop: str = "demo") -> Record | None:
        """The loop's record as the remote holds it (fetched into the lab)."""
        repo = Git(self.lab.root)
        Remote(repo, "origin", loop).pull()
        return RecordStore(repo, loop).load()

    def pr_body(self, number: int = 1) -> str:
        """The pull request's body as GitHub holds it."""
        return str(self.github.pull(number)["body"])


@contextmanager
def world(tmp_path: Path, values: list[str] | None = None, config_text: str | None = None) -> Iterator[World]:
    """A fresh world; alice may write, rita may only read."""
    lab = make_lab(tmp_path, values or VALUES, remote=True, config_text=config_text)
    with GitHubStandIn(git_dir=lab.remote) as github:
        github.add_user("alice", role="write")
        github.add_user("rita", role="read")
        yield World(tmp_path, lab, github)
