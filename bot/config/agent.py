"""`agent:` keys every kind takes, the environment it may be passed, and explicit model prices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field, field_validator

from ..names import NEVER_PASSED
from .base import TIMEOUT_MAX, Number, Strict
from .plugins import known_plugin

if TYPE_CHECKING:
    from .loop import Loop


class PriceConfig(Strict):
    """An explicit model price in USD per million tokens; cache prices default to Anthropic's multipliers."""

    input: Number = Field(ge=0)  # USD per million input tokens
    output: Number = Field(ge=0)  # USD per million output tokens
    cache_write: Number | None = Field(default=None, ge=0)  # default: 1.25 x input
    cache_read: Number | None = Field(default=None, ge=0)  # default: 0.1 x input


def _no_github_token(variables: list[str]) -> list[str]:
    leaked = [name for name in variables if name in NEVER_PASSED]
    if leaked:
        raise ValueError(f"pass_env may not pass {leaked[0]}: the agent never gets the GitHub token")
    return variables


# Names of variables passed from the bot's environment to an agent's process (kinds command, claude-code).
PassEnv = Annotated[list[str], AfterValidator(_no_github_token)]


class AgentConfig(Strict):
    """`agent:` keys every kind takes; each agent plugin's `Options` derives from it and adds its own keys."""

    kind: str = "command"  # the agent: claude-code, anthropic, command, optuna, or module:Class
    # Seconds per experiment; the agent's process group is killed after.
    timeout: Number = Field(default=1800.0, gt=0, le=TIMEOUT_MAX)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        return known_plugin("arl_bot.agents", kind)

    def check_loop(self, loop: Loop) -> None:
        """Refuse settings the rest of the loop makes useless (raise ValueError); a plugin may override it."""
