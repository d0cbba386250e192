"""`sandbox:`: which sandbox, and what each phase (the agent, the evaluation) may do inside it."""

from __future__ import annotations

from pydantic import Field, field_validator

from .base import PID_MAX_LIMIT, Strict
from .plugins import known_plugin


class PhaseSandbox(Strict):
    """What one phase may do inside the sandbox; unset keys keep the phase's default."""

    network: bool | None = None  # default: the agent yes (it calls its API), the evaluation no
    memory_mb: int | None = Field(default=None, ge=16, le=2**40)  # the host's RAM is checked at run time
    cpu_seconds: int | None = Field(default=None, ge=1, le=2**31 - 1)  # CPU time per process
    processes: int | None = Field(default=4096, ge=8, le=PID_MAX_LIMIT)  # a fork bomb stops here


class SandboxSettings(Strict):
    """`sandbox:` as a mapping; the plain string form is `kind` alone."""

    kind: str | None = None  # a registered sandbox (docker, bubblewrap, none); default: bubblewrap where installed
    agent: PhaseSandbox = Field(default_factory=PhaseSandbox)  # what the agent's phase may do
    # What the evaluation's phase (and the guards' checks) may do.
    evaluation: PhaseSandbox = Field(default_factory=PhaseSandbox)
    hidden: list[str] = Field(default_factory=list)  # more paths no phase may read (~ is the bot's HOME)
    # host paths (held-out labels) only the trusted scorer (`evaluate.score`) may read; hidden from the rest
    score_only: list[str] = Field(default_factory=list)
    # each sandbox plugin's `Options` derives from this model and adds its own keys (docker: image, gpus)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str | None) -> str | None:
        return kind if kind is None else known_plugin("arl_bot.sandboxes", kind)
