"""A repository, its bare remote and the GitHub stand-in, wired together for `arl-bot action` tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arl_bot.git import Git
from arl_bot.github.outputs import read_outputs
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
def world(tmp_path: Path, values: list[str] | None = None, config_text: str | None = None,
          files: dict[str, str] | None = None) -> Iterator[World]:
    """A fresh world; alice may write, rita may only read."""
    lab = make_lab(tmp_path, values or VALUES, remote=True, config_text=config_text, files=files)
    with GitHubStandIn(git_dir=lab.remote) as github:
        github.add_user("alice", role="write")
        github.add_user("rita", role="read")
        yield World(tmp_path, lab, github)


@dataclass
class ResearchJob:
    """One job of the research matrix: `arl-bot action` as its own process, in its own clone of the remote."""

    entry: dict[str, Any]  # its matrix entry, as the gate wrote it
    root: Path  # the job's workspace: a fresh clone
    folder: Path  # the runner's files: GITHUB_OUTPUT, GITHUB_STEP_SUMMARY
    env: dict[str, str]  # what the runner and action.yml give `arl-bot action`
    process: subprocess.Popen[str] | None = None
    code: int | None = None
    log: str = ""

    def start(self) -> ResearchJob:
        """A runner picks the job up: `arl-bot action` starts in the workspace."""
        self.process = subprocess.Popen([sys.executable, "-m", "arl_bot.cli", "action"], cwd=self.root, env=self.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return self

    def wait(self, timeout: float = 300) -> ResearchJob:
        """Wait for the job to end; its log is stdout and stderr together, as the Actions log shows them."""
        assert self.process is not None, "start() it first"
        self.log = self.process.communicate(timeout=timeout)[0]
        self.code = self.process.returncode
        return self

    @property
    def outputs(self) -> dict[str, str]:
        """The step outputs the job wrote."""
        return read_outputs(self.folder / "output")

    @property
    def summary(self) -> str:
        """The job summary it wrote."""
        return (self.folder / "summary").read_text()


def research_matrix(w: World, gate: Result, event: str, data: dict[str, Any], *, git_server: str,
                    token: Callable[[], str], start: bool = True, **env: str) -> list[ResearchJob]:
    """Start every research job the gate's outputs ask for, all at once, as the workflow's matrix does.

    Each gets what GitHub gives a job of the research matrix (bot/templates/workflow.yml): a fresh checkout
    whose origin is the remote over HTTP (git_server) without credentials in it, the run's event file, the
    run's id (shared by every job of the run), a token of its own (token()), its runner's name, and the
    action's ARL_* inputs from its matrix entry and the gate's outputs, passed on unchanged. start=False:
    each is ready, and starts when the test calls its start() (a runner that picks its job up later).
    """
    assert gate.code == 0 and gate.outputs["run"] == "true", gate.stdout + gate.stderr
    assert w.lab.remote is not None
    entries: list[dict[str, Any]] = json.loads(gate.outputs["loops"])
    run = w.tmp / f"run-{len(list(w.tmp.glob('run-*')))}"
    run.mkdir()
    event_path = run / "event.json"
    event_path.write_text(json.dumps(data))
    # The runner's own environment, not the test's: nothing GitHub- or arl-bot-specific leaks in.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ARL_", "RUNNER_"))}
    jobs = []
    for index, entry in enumerate(entries):
        folder = run / f"job-{index}"
        root = folder / "workspace"
        (folder / "temp").mkdir(parents=True)
        git(folder, "clone", "--quiet", str(w.lab.remote), str(root))  # actions/checkout, fetch-depth: 0
        git(root, "remote", "set-url", "origin", f"{git_server}/{w.lab.remote.name}")
        for name in ("output", "summary"):
            (folder / name).touch()
        full = {
            **base, "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(event_path), "GITHUB_REPOSITORY": w.github.full_name,
            "GITHUB_API_URL": w.github.url, "GITHUB_SERVER_URL": git_server, "GITHUB_RUN_ID": "4242",
            "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "research", "GITHUB_ACTOR": "alice",
            "GITHUB_WORKSPACE": str(root), "GITHUB_TOKEN": token(), "GITHUB_OUTPUT": str(folder / "output"),
            "GITHUB_STEP_SUMMARY": str(folder / "summary"), "RUNNER_NAME": f"gpu-runner-{index}",
            "RUNNER_ENVIRONMENT": "self-hosted", "RUNNER_TEMP": str(folder / "temp"),
            # action.yml's `env:` of its Run step: the inputs, from the matrix entry and the gate's outputs.
            "ARL_CONFIG": ".autoresearch.yml", "ARL_PHASE": "research", "ARL_LOOP": str(entry["loop"]),
            "ARL_SHARD": str(entry.get("shard", "")),  # a matrix entry without it reads as ''
            "ARL_COMMAND": gate.outputs["command"], "ARL_EXPERIMENTS": gate.outputs["experiments"],
            "ARL_EXPERIMENT": gate.outputs["experiment"], "ARL_PR": gate.outputs["pr"],
            "ARL_REPLY": gate.outputs["reply"], "ARL_DRY_RUN": "false", "ARL_GITHUB_APP_ID": "",
            "ARL_GITHUB_APP_PRIVATE_KEY": "", "ANTHROPIC_API_KEY": "",
            "ARL_GITHUB_TIMEOUT": "5", "ARL_GITHUB_PACE": "0", **env,
        }
        jobs.append(ResearchJob(entry, root, folder, full))
    return [job.start() for job in jobs] if start else jobs
