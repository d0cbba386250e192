"""One way to start a run, for `arl-bot run` and the Action's research job: checks, sandbox, session, warnings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import config as config_module
from .config import Config, Loop
from .git import Git
from .inforce import config_note
from .loop import Listener, RunOptions, Session
from .prbody import BodyContext, render
from .record import Record
from .sandbox import choose_sandbox
from .sandbox.none import WARNING

DRY_RUN_TITLE = "pull-request body (dry run: not posted)"


@dataclass
class Started:
    """A session ready to run, and what the pull request and the job summary say about how it runs."""

    session: Session
    loop: Loop
    sandbox_warning: str  # '' when the sandbox isolates the agent and the evaluation

    def body_context(self, *, commit_url: str = "", run_url: str = "") -> BodyContext:
        """What the pull request's body needs besides the record."""
        return BodyContext(loop=self.loop.name, goal=self.loop.metric.goal, metric=self.loop.metric.name,
                           commit_url=commit_url, run_url=run_url, sandbox_warning=self.sandbox_warning)

    def dry_run_body(self, record: Record) -> str:
        """The pull request's body a dry run would have posted (Markdown)."""
        return render(record, self.body_context())


def prepare_run(repo: Git, cfg: Config, loop: Loop, options: RunOptions, *, listeners: list[Listener],
                config_path: Path | None = None, require_isolation: bool = False) -> Started:
    """Check this machine can grant the loop's sandbox limits, choose the sandbox, build the session, warn.

    config_path: the config file read from the checkout; when given, a run that follows uncommitted changes
    to it says so (the Action runs on the committed file and passes none). require_isolation: the Action,
    whose process holds a write token, never falls back to running the agent unsandboxed.
    """
    # Here, where the loop runs, and not in config.load(): the gate that reads the config may run elsewhere.
    config_module.check_host(cfg, loop)
    sandbox = choose_sandbox(loop, require_isolation=require_isolation)
    session = Session(repo, cfg, loop, options, sandbox=sandbox, listeners=listeners)
    warning = "" if sandbox.isolated else WARNING
    if warning:
        session.warn(warning)
    if config_path is not None and (note := config_note(repo, config_path)):
        session.warn(note)
    return Started(session, loop, warning)
