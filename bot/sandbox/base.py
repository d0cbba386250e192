"""The sandbox interface: one method that runs a command under a policy."""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from ..config import Loop, SandboxSettings, plugin_options
from ..errors import ArlError
from ..process import ProcessResult
from ..registry import available, load_plugin

# Where credentials live on a typical host; no phase may read them, whatever else it may read.
DEFAULT_HIDDEN = (
    "~/.ssh", "~/.aws", "~/.azure", "~/.config/gcloud", "~/.config/gh", "~/.docker", "~/.kube",
    "~/.gnupg", "~/.netrc", "~/.git-credentials", "~/.pypirc", "~/.npmrc", "~/.anthropic", "~/.claude",
)


@dataclass(frozen=True)
class Limits:
    """Resource limits for one phase; None means no limit."""

    memory_mb: int | None = None
    cpu_seconds: int | None = None
    processes: int | None = None


@dataclass(frozen=True)
class Policy:
    """What one phase (agent or evaluation) may do."""

    phase: str  # "agent", "evaluation" or "score" (the trusted scorer: evaluation settings, sees score_only)
    writable: tuple[Path, ...]  # everything else is read-only
    network: bool
    env: dict[str, str]  # the whole environment the child sees
    limits: Limits = field(default_factory=Limits)
    readable: tuple[Path, ...] = ()  # must stay visible where the sandbox mounts private dirs (/tmp)
    readonly: tuple[Path, ...] = ()  # stay read-only even inside a writable path (the tree's .git file)
    hidden: tuple[Path, ...] = ()  # may not be read at all (credentials on the host)


class Sandbox(ABC):
    """Runs commands isolated according to a Policy."""

    name: str = ""
    isolated: bool = True  # False only for `none`: the run and the PR body warn about it
    # The `sandbox:` keys this sandbox takes, checked when the config loads and shown by `arl-bot schema`;
    # subclasses derive their own from SandboxSettings and narrow `settings` to it.
    Options: ClassVar[type[SandboxSettings]] = SandboxSettings
    settings: SandboxSettings

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        # The default sandbox (no `kind:`) was loaded with the keys every sandbox takes; they fit any of them.
        self.settings = plugin_options(self.Options, settings or SandboxSettings(), "sandbox")

    def resolve(self, policy: Policy) -> Policy:
        """policy with the loop's `sandbox:` settings for its phase applied (network, limits, hidden)."""
        phase = self.settings.agent if policy.phase == "agent" else self.settings.evaluation
        hidden = tuple(Path(os.path.expanduser(p)) for p in (*DEFAULT_HIDDEN, *self.settings.hidden))
        # `score_only` (labels): hidden from the agent and the pipeline, readable by the trusted scorer alone
        score_only = tuple(Path(os.path.expanduser(p)) for p in self.settings.score_only)
        scorer = policy.phase == "score"
        return replace(
            policy,
            network=policy.network if phase.network is None else phase.network,
            limits=Limits(phase.memory_mb, phase.cpu_seconds, phase.processes),
            readable=(*policy.readable, *(score_only if scorer else ())),
            hidden=(*policy.hidden, *hidden, *(() if scorer else score_only)),
        )

    @abstractmethod
    def run(
        self, argv: list[str], *, cwd: Path, policy: Policy, timeout: float, stdin: str | None = None
    ) -> ProcessResult:
        """Run argv in cwd under policy; every process it started is gone when this returns."""


NOTE_PREFIX = "arl-bot sandbox: "  # starts the line a sandbox adds to stderr when a limit was hit


def limit_note(result: ProcessResult) -> str:
    """The limit a sandbox says the run hit, or empty."""
    notes = [line for line in result.stderr.splitlines() if line.startswith(NOTE_PREFIX)]
    return notes[-1].removeprefix(NOTE_PREFIX) if notes else ""


class WrappedSandbox(Sandbox):
    """Another sandbox, with something added to some phases' policy (a device slot, the services' variables).

    Everything else a sandbox offers is the inner one's: its name, whether it isolates, its own attributes.
    """

    def __init__(self, inner: Sandbox) -> None:
        super().__init__(getattr(inner, "settings", None))
        self.inner = inner
        self.name = inner.name
        self.isolated = inner.isolated

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copying, unpickling): never recurse into __getattr__
            raise AttributeError(name)
        return getattr(self.inner, name)

    def adjust(self, policy: Policy) -> Policy:
        """policy as this wrapper changes it (unchanged by default)."""
        return policy

    def run(self, argv: list[str], *, cwd: Path, policy: Policy, timeout: float,
            stdin: str | None = None) -> ProcessResult:
        """Run argv under the inner sandbox, with the policy adjusted."""
        return self.inner.run(argv, cwd=cwd, policy=self.adjust(policy), timeout=timeout, stdin=stdin)


class SandboxRequired(ArlError):
    """No sandbox is available and the loop did not say `sandbox: none`, where isolation is required."""

    def __init__(self, loop: str) -> None:
        super().__init__(
            f"loop {loop!r} would run its agent and evaluation without a sandbox: `bwrap` is not installed "
            "here, and this process holds the GitHub token that can push to your repository",
            hint="install bubblewrap on the runner (sudo apt-get install bubblewrap; on Ubuntu 24.04 also "
                 "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0), choose `sandbox: docker`, "
                 "or accept the risk with `sandbox: none` in the loop's config")
        self.loop = loop


def choose_sandbox(loop: Loop, *, require_isolation: bool = False) -> Sandbox:
    """The loop's sandbox; by default bubblewrap where it is installed and registered, else none.

    With require_isolation (the Action: the process holds a write token), falling back to none is refused;
    only an explicit `sandbox: none` runs unisolated.
    """
    settings = loop.sandbox_settings
    if settings.kind is not None:
        return get_sandbox(settings.kind, settings)
    if shutil.which("bwrap") and "bubblewrap" in available("arl_bot.sandboxes"):
        return get_sandbox("bubblewrap", settings)
    if require_isolation:
        raise SandboxRequired(loop.name)
    return get_sandbox("none", settings)


def get_sandbox(name: str, settings: SandboxSettings | None = None) -> Sandbox:
    """The sandbox registered under name (entry point group `arl_bot.sandboxes`)."""
    cls = load_plugin("arl_bot.sandboxes", name)
    instance = cls(settings)
    if not isinstance(instance, Sandbox):
        raise TypeError(f"{cls!r} is not a Sandbox")
    return instance
