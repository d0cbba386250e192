"""The agent interface: every agent gets the same task and returns the same result."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ..config import AgentConfig, Loop, PriceConfig, open_model, plugin_options
from ..record import Attempt, Status
from ..registry import load_plugin
from ..sandbox import Sandbox


@dataclass(frozen=True)
class AgentTask:
    """What an agent is asked to do in one experiment."""

    tree: Path  # the working tree to edit (the research worktree, at the parent commit)
    prompt: str  # instructions + history + mode + redirect notes, ready to send
    prompt_file: Path  # the same text on disk, outside the tree
    experiment: int
    mode: str  # "improve", "explore", ...
    parent: str  # the commit the tree is at
    timeout: float  # seconds
    cost_limit_usd: float | None = None  # what is left of the run's budget; None: no cap
    redirects: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # the environment the agent's process may see
    history: tuple[Attempt, ...] = ()  # every attempt so far, oldest first (optuna feeds them back)


COST_CAPPED = "cost_capped"  # AgentResult.extra key: the agent stopped because the cost cap left too little


@dataclass(frozen=True)
class AgentResult:
    """What an agent did; the bot decides by measuring, never by what the agent claims."""

    description: str
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    log: str = ""
    error: str = ""  # set when the agent failed (exit status, timeout, cost cap)
    extra: dict[str, object] = field(default_factory=dict)  # e.g. the optuna trial's parameters

    @property
    def ok(self) -> bool:
        """Whether the agent finished without an error."""
        return not self.error


class ModelOptions(AgentConfig):
    """`agent:` keys of the kinds that call Claude (anthropic, claude-code)."""

    model: str | None = None  # the Claude model; default: claude-sonnet-4-6 (anthropic), the CLI's own (claude-code)
    # Model replies per experiment; default 30 (anthropic), the CLI's (claude-code).
    max_turns: int | None = Field(default=None, ge=1)
    price: PriceConfig | None = None  # overrides the price table (bot/pricing.py) for this agent's calls
    # The variable of the bot's environment that holds the API key.
    api_key_env: str = Field(default="ANTHROPIC_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class Agent(ABC):
    """Edits a working tree to try one idea."""

    kind: str = ""
    # The `agent:` keys this agent takes, checked when the config loads and shown by `arl-bot schema`; an
    # agent that declares none takes any key, unchecked. Subclasses narrow `config` to their Options.
    Options: ClassVar[type[AgentConfig]] = open_model(AgentConfig)
    config: AgentConfig

    def __init__(self, config: AgentConfig, loop: Loop, sandbox: Sandbox) -> None:
        self.config = plugin_options(self.Options, config, f"loops.{loop.name}.agent")
        self.loop = loop
        self.sandbox = sandbox

    @abstractmethod
    def propose(self, task: AgentTask) -> AgentResult:
        """Change task.tree in place and say what was tried."""

    def observe(self, experiment: int, status: Status, metric: float | None) -> None:  # noqa: B027
        """Hear how an experiment ended (agents that learn, like optuna, override this)."""


def get_agent(loop: Loop, sandbox: Sandbox) -> Agent:
    """The agent the loop's config asks for."""
    cls = load_plugin("arl_bot.agents", loop.agent.kind)
    agent = cls(loop.agent, loop, sandbox)
    if not isinstance(agent, Agent):
        raise TypeError(f"{cls!r} is not an Agent")
    return agent
