"""The whole `.autoresearch.yml`: its loops, and who may steer them from GitHub."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr

from ..errors import ConfigError
from .base import CONFIG_FILE, Number, Strict
from .loop import Loop

Role = Literal["admin", "maintain", "write", "triage", "read"]
DEFAULT_ROLES: tuple[Role, ...] = ("admin", "maintain", "write")


class GitHubSettings(Strict):
    """Who may steer loops from pull-request comments; how the research pull request opens and jobs hand over."""

    # Roles from the collaborator-permission API, never author_association (which says nothing about rights).
    allowed_roles: list[Role] = Field(default_factory=lambda: list(DEFAULT_ROLES), min_length=1)
    # Private repositories on GitHub Free and Pro have no draft pull requests; false opens a normal one.
    draft: bool = True
    # Hours one job runs before it hands the loop to a new job: GITHUB_TOKEN dies after 24 h and a GitHub-hosted
    # job after 6 h. Default: 5.5 on GitHub-hosted runners, 23 on self-hosted ones with GITHUB_TOKEN, none with App
    # credentials on self-hosted ones (keep it below the research job's timeout-minutes).
    job_hours: Number | None = Field(default=None, gt=0)


class Config(Strict):
    """The whole file."""

    version: Literal[1] = 1  # the file format's version; 1 is the only one
    # Loop name -> loop; the name makes the research branch autoresearch/<name>.
    loops: dict[str, Loop] = Field(min_length=1)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    path: str = Field(default=CONFIG_FILE, exclude=True)
    _text: str = PrivateAttr(default="")  # the file's text, for the line numbers of later checks

    def loop(self, name: str | None) -> Loop:
        """The loop called name, or the only one when name is None."""
        if name is None:
            if len(self.loops) == 1:
                return next(iter(self.loops.values()))
            raise ConfigError(
                f"there are {len(self.loops)} loops ({', '.join(self.loops)}); say which",
                path=self.path,
                hint="pass --loop NAME",
            )
        if name not in self.loops:
            raise ConfigError(
                f"no loop named {name!r}", path=self.path, key="loops",
                hint=f"loops in this file: {', '.join(self.loops)}",
            )
        return self.loops[name]
