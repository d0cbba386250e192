"""Everything one `arl-bot action` invocation works with, read once from the runner's environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config import Config
from ..errors import ArlError
from ..events import Event
from ..git import Git
from .client import GitHub
from .tokens import TokenSource


@dataclass
class Context:
    """The event, the checkout, its config, and the GitHub client (None in a dry run)."""

    env: Mapping[str, str]
    event: Event
    repo: Git
    config: Config
    github: GitHub | None
    remote: str = "origin"
    dry_run: bool = False
    secrets: tuple[str, ...] = field(default=(), repr=False)
    tokens: TokenSource | None = field(default=None, repr=False)  # where the GitHub token comes from

    @property
    def gh(self) -> GitHub:
        """The GitHub client; a dry run has none."""
        if self.github is None:
            raise ArlError("this needs the GitHub API, and a dry run calls none",
                           hint="unset ARL_DRY_RUN, or use a workflow_dispatch / CLI event for a dry run")
        return self.github

    @property
    def sync_remote(self) -> str | None:
        """The remote to fetch from and push to (None in a dry run: nothing leaves the machine)."""
        return None if self.dry_run else self.remote

    def redact(self, text: str) -> str:
        """text without any secret this run holds (tokens can surface in git's or a server's words)."""
        for secret in (*self.secrets, *(self.tokens.issued if self.tokens else ())):
            if secret:
                text = text.replace(secret, "***")
        return text
