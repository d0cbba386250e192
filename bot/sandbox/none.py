"""No isolation: the child runs as the bot does. Explicit opt-in only, and warned about everywhere."""

from __future__ import annotations

from pathlib import Path

from .. import process
from ..process import ProcessResult
from .base import Policy, Sandbox

WARNING = (
    "sandbox: none — the agent and the evaluation run with your user's full access to this machine"
)


class NoSandbox(Sandbox):
    """Runs the command directly, in its own process group, with the policy's environment."""

    name = "none"
    isolated = False

    def run(
        self, argv: list[str], *, cwd: Path, policy: Policy, timeout: float, stdin: str | None = None
    ) -> ProcessResult:
        """Run argv with only the policy's environment; no filesystem or network limits."""
        return process.run(argv, cwd=cwd, env=policy.env, timeout=timeout, stdin=stdin)
