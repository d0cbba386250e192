"""The claude-code agent: the Claude Code CLI, headless in the sandbox, its API calls metered as they go."""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
import time
from decimal import Decimal
from pathlib import Path

from pydantic import Field

from .. import policy, pricing, safefile
from ..config import PassEnv
from ..errors import ArlError
from ..names import NEVER_PASSED
from ..process import TAIL_BYTES
from .api_meter import Ledger, MeteringProxy
from .base import COST_CAPPED, Agent, AgentResult, AgentTask, ModelOptions
from .claude_stream import StreamMeter
from .reply import SUMMARY_RULE, summary

FILE_TOOLS = ["Read", "Edit", "Write", "Glob", "Grep"]  # --allowedTools outside a real sandbox
QUIET = {  # no updates, telemetry or error reports from inside an experiment
    "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}
TOKENS = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN")  # taken from our env; the CLI sends them itself
POLL_S = 0.05
LINE_BYTES = 16_000_000  # longest stream-json line the watcher holds on to
CONTEXT = "You are running one experiment of an automated research loop; the bot measures the result itself. "

# The CLI runs in the background of a small shell so that the bot can stop it from outside any sandbox:
# the API meter creates $ARL_STOP when it refuses a call the cost cap cannot pay for, and the shell kills
# the CLI. The sandbox then kills whatever the CLI left running, as it does after every phase. The prompt
# comes from a file, since argv has a size limit and the prompt holds the whole history.
WRAPPER = """\
"$@" <"$ARL_PROMPT" >"$ARL_STREAM" 2>"$ARL_STDERR" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; exit 143' TERM INT
while kill -0 "$child" 2>/dev/null; do
  if [ -e "$ARL_STOP" ]; then
    kill -TERM "$child" 2>/dev/null; sleep 1; kill -KILL "$child" 2>/dev/null; exit 137
  fi
  sleep 0.1
done
wait "$child"
"""


class ClaudeCodeOptions(ModelOptions):
    """`agent:` keys of the claude-code kind."""

    command: str | None = None  # the CLI; default `claude`
    allowed_tools: list[str] | None = None  # --tools/--allowedTools; outside a sandbox: the file tools
    args: list[str] = Field(default_factory=list)  # extra command-line arguments, after arl-bot's own
    pass_env: PassEnv = Field(default_factory=list)  # variables of the bot's environment the CLI gets


class ClaudeCodeAgent(Agent):
    """Runs `claude -p` on the tree; its cost and tokens are what arl-bot's API meter saw it spend."""

    kind = "claude-code"
    Options = ClaudeCodeOptions
    config: ClaudeCodeOptions

    def propose(self, task: AgentTask) -> AgentResult:
        """Run the CLI once, every API call through the meter; stop it at the timeout or at the cost cap."""
        override = pricing.configured(self.config.price)
        if self.config.model and self.config.model.startswith("claude-"):
            pricing.price_for(self.config.model, override)  # an unknown model fails before any spend
        if self.sandbox.name == "docker":
            # The meter listens on the host's loopback, which a container on Docker's bridge cannot reach.
            raise ArlError("the claude-code agent cannot run in the docker sandbox: its API calls go through "
                           "arl-bot's cost meter on 127.0.0.1, which a container cannot reach",
                           hint="use `sandbox: bubblewrap` for this loop, or the `anthropic` agent")
        workdir = task.prompt_file.parent
        files = {name: workdir / f"claude.{name}" for name in ("stream", "stderr", "stop")}
        for path in files.values():
            path.unlink(missing_ok=True)
        files["stream"].touch()
        limit = Decimal(str(task.cost_limit_usd)) if task.cost_limit_usd is not None else None
        ledger = Ledger(limit=limit, override=override, on_stop=lambda _reason: _raise(files["stop"]))
        meter = StreamMeter()
        watcher = _Watcher(files["stream"], meter)
        with MeteringProxy(ledger, upstream=os.environ.get("ANTHROPIC_BASE_URL") or None,
                           api_key=_lent_key(self.config.api_key_env), timeout=task.timeout) as proxy:
            env = {**self.environment(task, proxy), "ARL_PROMPT": str(task.prompt_file),
                   "ARL_STREAM": str(files["stream"]), "ARL_STDERR": str(files["stderr"]),
                   "ARL_STOP": str(files["stop"])}
            watcher.start()
            try:
                run = self.sandbox.run(
                    ["/bin/sh", "-c", WRAPPER, "claude-code", *self.argv()], cwd=task.tree,
                    policy=policy.agent_policy(task.tree, workdir, env), timeout=task.timeout,
                )
            finally:
                watcher.finish()
        if ledger.unknown_model:
            raise pricing.UnknownModelError(ledger.unknown_model)
        # The meter saw every call the CLI made, finished or cut off: its sum is the cost, not the CLI's
        # own report, which misses calls still streaming when it was stopped.
        cost, usage = pricing.dollars(ledger.spent), ledger.usage
        stderr = _tail(files["stderr"])
        error = ""
        if ledger.reason:
            error = f"{ledger.reason}; Claude Code was stopped"
        elif run.timed_out:
            error = f"agent timed out after {task.timeout:g}s"
        elif run.returncode != 0 and (meter.result or {}).get("subtype") != "error_max_turns":
            said = meter.result_text or stderr.strip() or run.stderr.strip()
            error = f"claude exited with status {run.returncode}: {_last_line(said)}"
        log = [*meter.actions, meter.result_text.strip()]
        reported = meter.reported_cost
        log.append(f"cost ${cost:.6f} over {len(ledger.calls)} API calls, metered by arl-bot"
                   + (f" (claude reported ${reported:.6f})" if reported is not None else "")
                   + f"; {usage.prompt_tokens} tokens in, {usage.output_tokens} out")
        if error:
            log.append(error)
        if stderr.strip():
            log += ["--- stderr ---", stderr]
        return AgentResult(
            description=summary(meter.result_text) or f"experiment {task.experiment}",
            cost_usd=cost, tokens_in=usage.prompt_tokens, tokens_out=usage.output_tokens,
            log="\n".join(line for line in log if line)[-TAIL_BYTES:], error=error,
            extra={"agent": {"model": meter.model, "turns": (meter.result or {}).get("num_turns"),
                             "api_calls": len(ledger.calls)}, **({COST_CAPPED: True} if ledger.reason else {})},
        )

    def environment(self, task: AgentTask, proxy: MeteringProxy) -> dict[str, str]:
        """What the CLI gets on top of the sandbox's safe variables: the meter's address and the credentials
        it needs, never the API key the meter holds, never a GitHub token."""
        env = {**task.env, **policy.passed_env(self.config.pass_env), **_credentials(self.config.api_key_env),
               **QUIET, "ANTHROPIC_BASE_URL": proxy.url}
        if proxy.placeholder is not None:
            env.pop(self.config.api_key_env, None)  # not even through pass_env: the meter holds the key
            env["ANTHROPIC_API_KEY"] = proxy.placeholder  # good only at this meter, only while it runs
        if self.sandbox.isolated:
            env["IS_SANDBOX"] = "1"  # lets the CLI skip permission prompts as root: only inside a real sandbox
        for name in NEVER_PASSED:  # whatever the loop passes, the agent does not get these
            env.pop(name, None)
        return env

    def argv(self) -> list[str]:
        """The CLI's command line: never a secret on it, and the prompt comes on stdin."""
        command = shlex.split(self.config.command) if self.config.command else ["claude"]
        args = [*command, "-p", "--output-format", "stream-json", "--verbose",
                "--append-system-prompt", CONTEXT + SUMMARY_RULE]
        if self.config.model:
            args += ["--model", self.config.model]
        if self.config.max_turns:
            args += ["--max-turns", str(self.config.max_turns)]
        tools = self.config.allowed_tools
        if self.sandbox.isolated:
            # The sandbox is the fence; as root the CLI accepts this only with IS_SANDBOX=1 (see environment).
            args.append("--dangerously-skip-permissions")
        else:
            args += ["--permission-mode", "acceptEdits"]  # edits inside the working directory, nothing else
            tools = FILE_TOOLS if tools is None else tools
        if tools is not None:
            # --tools is what the model is offered; --allowedTools what runs without asking.
            args += ["--tools", ",".join(tools), "--allowedTools", ",".join(tools)]
        return [*args, *self.config.args]


class _Watcher(threading.Thread):
    """Tails the CLI's stream into the meter: what it did and what it answered, for the log."""

    def __init__(self, stream: Path, meter: StreamMeter) -> None:
        super().__init__(daemon=True, name="claude-code-watcher")
        self.meter = meter
        self._done = threading.Event()
        # Opened now, before the agent runs: replacing the name with a link or a FIFO later changes nothing.
        self._handle = stream.open("rb")

    def run(self) -> None:
        pending = b""
        with self._handle as handle:
            while True:
                chunk = handle.read(1 << 16)
                if chunk:
                    *lines, pending = (pending + chunk).split(b"\n")
                    if len(pending) > LINE_BYTES:  # no stream event is this long: drop it, not the bot's memory
                        pending = b""
                    for line in lines:
                        self.meter.feed(line)
                elif self._done.is_set():
                    break
                else:
                    time.sleep(POLL_S)
        if pending.strip():
            self.meter.feed(pending)

    def finish(self) -> None:
        """Read what is left of the stream and stop."""
        self._done.set()
        if self.is_alive():
            self.join()


def _raise(stop: Path) -> None:
    """Tell the wrapper shell to stop the CLI."""
    # O_EXCL: never through a link the agent put there (touch would create the link's target).
    with contextlib.suppress(FileExistsError):
        os.close(os.open(stop, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _credentials(variable: str) -> dict[str, str]:
    """The tokens the CLI sends itself; an API key alone stays with the meter (see _lent_key)."""
    env = {name: os.environ[name] for name in TOKENS if os.environ.get(name)}
    if not env and not os.environ.get(variable):
        raise ArlError(f"the claude-code agent needs ${variable} or $CLAUDE_CODE_OAUTH_TOKEN",
                       hint=f"export {variable}=... (in GitHub: a repository secret passed through env:)")
    if env and os.environ.get(variable):
        env["ANTHROPIC_API_KEY"] = os.environ[variable]  # with a token the CLI picks: it gets both, as before
    return env


def _lent_key(variable: str) -> str | None:
    """The API key the meter puts on each call, when the CLI needs nothing else; then the CLI never sees it."""
    if any(os.environ.get(name) for name in TOKENS):
        return None
    return os.environ.get(variable) or None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def _tail(path: Path) -> str:
    """The end of a file the CLI wrote in its workdir; the agent could have made it a link or a FIFO."""
    try:
        return safefile.text_untrusted(path.parent, path.name, TAIL_BYTES // 2, over="tail")
    except safefile.MissingFileError:
        return ""
    except safefile.UntrustedFileError as exc:
        return f"(not read: {exc.message})"
