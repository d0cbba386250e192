"""The anthropic agent: our own tool-use loop over the Messages API, the one module that imports the SDK."""

from __future__ import annotations

import importlib
import os
import random
import time
from decimal import Decimal
from typing import Any

from pydantic import Field

from .. import pricing
from ..config import PluginOptions
from ..errors import ArlError
from ..process import TAIL_BYTES
from .base import COST_CAPPED, Agent, AgentResult, AgentTask, ModelOptions
from .filetools import SCHEMAS, FileTools
from .reply import SUMMARY_RULE, summary

DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_TURNS = 30  # model replies per experiment unless agent.max_turns says otherwise
# Retries are ours, not the SDK's, so that no retry outlives the experiment's deadline; an overload can
# also arrive inside a stream that had already begun, where the SDK would not retry at all.
RETRIES = 6
RETRY_BASE_S = 0.5
RETRY_MAX_S = 30.0
RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504, 529)

SYSTEM = """\
You are a research engineer running one experiment of an automated research loop. You change files in a \
repository through the tools; the bot then measures the result with its own fixed evaluation and keeps \
the change only if the metric improves.

- Read what you need, then make one focused change you expect to improve the metric. Keep the code \
working: a crash wastes the experiment.
- Only files marked [editable] by list_files may be changed; other writes are refused.
- You cannot run code; reason from the source.
- When you are done, reply without a tool call.
""" + SUMMARY_RULE


class _Stop(Exception):
    """The experiment's time or money ran out; the message says which."""

    def __init__(self, message: str, billed: dict[str, Any] | None = None, *, capped: bool = False) -> None:
        super().__init__(message)
        self.billed = billed or {}  # usage of a reply cut off mid-stream: its prompt is paid for
        self.capped = capped  # the money, not the time: the run cannot afford another experiment either


class Retries(PluginOptions):
    """`agent.options` of the anthropic kind."""

    max_retries: int = Field(default=RETRIES, ge=0, le=20)  # of 429/529/5xx and dropped connections


class AnthropicOptions(ModelOptions):
    """`agent:` keys of the anthropic kind."""

    max_tokens: int = Field(default=16_000, ge=1)  # per model reply
    # Retries of overloads (529), rate limits (429), 5xx and dropped connections.
    options: Retries = Field(default_factory=Retries)


class AnthropicAgent(Agent):
    """Edits the tree through list/read/write/edit tools with a Claude model, within time and cost caps."""

    kind = "anthropic"
    Options = AnthropicOptions
    config: AnthropicOptions

    @property
    def model(self) -> str:
        """The model this agent calls."""
        return self.config.model or DEFAULT_MODEL

    def propose(self, task: AgentTask) -> AgentResult:
        """Talk to the model until it stops calling tools, the turns run out, or a cap is reached."""
        import anthropic

        price = pricing.price_for(self.model, pricing.configured(self.config.price))
        tools = FileTools(task.tree, tuple(self.loop.editable), tuple(self.loop.all_protected))
        client = anthropic.Anthropic(
            api_key=_api_key(self.config.api_key_env), base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
            max_retries=0,
        )
        deadline = time.monotonic() + task.timeout
        limit = Decimal(str(task.cost_limit_usd)) if task.cost_limit_usd is not None else None
        usage, spent, dearest = pricing.Usage(), Decimal(0), Decimal(0)
        log: list[str] = []
        messages: list[dict[str, Any]] = [{"role": "user", "content": [
            {"type": "text", "text": f"Run experiment {task.experiment} (mode: {task.mode}) now."}]}]
        error, final_text, turns, capped = "", "", 0, False
        max_turns = self.config.max_turns or DEFAULT_TURNS
        try:
            while turns < max_turns:
                if limit is not None and (spent >= limit or spent + dearest > limit):
                    raise _Stop(f"cost cap: ${spent:.4f} spent of ${limit:.4f}; "
                                f"the next call could cost ${dearest:.4f}", capped=True)
                turns += 1
                message = self._call(client, task.prompt, messages, deadline, task.timeout)
                call_usage = pricing.Usage.from_api(message.usage.model_dump())
                cost = price.cost(call_usage)
                usage, spent, dearest = usage + call_usage, spent + cost, max(dearest, cost)
                blocks = [block.model_dump(exclude_none=True, include=_FIELDS) for block in message.content]
                messages.append({"role": "assistant", "content": blocks})
                final_text = "\n".join(b["text"] for b in blocks if b["type"] == "text").strip() or final_text
                calls = [b for b in blocks if b["type"] == "tool_use"]
                log.append(f"turn {turns}: {call_usage.prompt_tokens} tokens in, {call_usage.output_tokens} out, "
                           f"${cost:.6f}" + (f" — {_first_line(final_text)}" if not calls and final_text else ""))
                if not calls:
                    break
                results = []
                for call in calls:
                    output, failed = tools.call(call["name"], dict(call.get("input") or {}))
                    log.append(f"  {call['name']} {_brief(call.get('input'))} -> "
                               f"{'ERROR ' if failed else ''}{_first_line(output)}")
                    results.append({"type": "tool_result", "tool_use_id": call["id"], "content": output,
                                    **({"is_error": True} if failed else {})})
                messages.append({"role": "user", "content": results})
            else:
                log.append(f"stopped after {max_turns} turns (agent.max_turns)")
        except _Stop as stop:
            cut = pricing.Usage.from_api(stop.billed)
            usage, spent = usage + cut, spent + price.cost(cut)
            error, capped = str(stop), stop.capped
            log.append(error)
        except anthropic.APIStatusError as exc:
            if exc.status_code in (401, 403, 404):
                raise ArlError(f"the Anthropic API refused {self.model!r}: {_api_message(exc)}",
                               hint=f"check {self.config.api_key_env} and agent.model") from None
            error = f"Anthropic API error {exc.status_code}: {_api_message(exc)}"
            log.append(error)
        except _unreachable() as exc:
            error = f"could not reach the Anthropic API: {exc}"
            log.append(error)
        description = summary(final_text) or f"experiment {task.experiment}"
        return AgentResult(
            description=description, cost_usd=pricing.dollars(spent), tokens_in=usage.prompt_tokens,
            tokens_out=usage.output_tokens, log="\n".join(log)[-TAIL_BYTES:], error=error,
            extra={"agent": {"model": self.model, "turns": turns, "cache_read_tokens": usage.cache_read_tokens,
                             "cache_write_tokens": usage.cache_write_tokens},
                   **({COST_CAPPED: True} if capped else {})},
        )

    def _call(self, client: Any, prompt: str, messages: list[dict[str, Any]], deadline: float,
              timeout: float) -> Any:
        """One streamed model reply; overloads, rate limits and dropped connections are retried with backoff."""
        import anthropic

        _move_cache_mark(messages)
        retries = self.config.options.max_retries
        failures: tuple[type[BaseException], ...] = (
            anthropic.APIStatusError, anthropic.APIConnectionError, *_transport_errors())
        late = f"agent timed out after {timeout:g}s"
        for attempt in range(retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Stop(late)
            opened: Any = None
            try:
                # Streaming: a long reply is not cut off by an HTTP timeout, and the deadline is checked
                # between events rather than only when the whole reply has arrived.
                with client.messages.stream(
                    model=self.model, max_tokens=self.config.max_tokens, tools=_tools(), messages=messages,
                    system=[{"type": "text", "text": SYSTEM},
                            # The stable part (tools, rules, instructions, history) is cached across turns.
                            {"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}],
                    timeout=max(1.0, remaining),
                ) as stream:
                    opened = stream
                    for _event in stream:
                        if time.monotonic() > deadline:
                            raise _Stop(late, _billed(stream))
                    return stream.get_final_message()
            except failures as exc:
                if time.monotonic() >= deadline:
                    raise _Stop(late, _billed(opened)) from None
                if attempt == retries or not _retryable(exc):
                    raise
                wait = _retry_after(exc) or min(RETRY_MAX_S, RETRY_BASE_S * 2**attempt) * (1 - random.random() / 4)
                if time.monotonic() + wait >= deadline:
                    raise _Stop(f"{late} (waiting to retry: {exc})") from None
                time.sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises


_FIELDS = {"type", "text", "id", "name", "input"}  # what we send back of the model's own blocks


def _tools() -> list[dict[str, Any]]:
    return [dict(schema) for schema in SCHEMAS]


def _billed(stream: Any) -> dict[str, Any] | None:
    """The usage of a reply so far (message_start carries the prompt's tokens), if it had begun."""
    try:
        return dict(stream.current_message_snapshot.usage.model_dump())
    except Exception:  # no message_start yet: nothing was billed
        return None


def _move_cache_mark(messages: list[dict[str, Any]]) -> None:
    """Keep one cache breakpoint, on the newest message, so each turn reads the last turn's prefix."""
    for message in messages:
        for block in message["content"]:
            block.pop("cache_control", None)
    messages[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}


def _unreachable() -> tuple[type[BaseException], ...]:
    import anthropic

    return (anthropic.APIConnectionError, *_transport_errors())


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What the SDK's HTTP client raises when a stream breaks after the response began (not wrapped)."""
    for name in ("httpx2", "httpx"):  # anthropic>=2 ships its own fork of httpx
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return (module.TransportError,)
    return ()


def _retryable(exc: Any) -> bool:
    status = getattr(exc, "status_code", None)
    if status is None:  # a connection error or a timeout
        return True
    body = exc.body if isinstance(exc.body, dict) else {}
    kind = body["error"].get("type") if isinstance(body.get("error"), dict) else None
    return status in RETRY_STATUSES or kind in ("overloaded_error", "rate_limit_error", "api_error")


def _retry_after(exc: Any) -> float | None:
    """What the API asked us to wait (retry-after-ms or retry-after seconds), within reason."""
    response = getattr(exc, "response", None)
    headers = response.headers if response is not None else {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name, "")) * scale
        except ValueError:
            continue
        if 0 <= value <= 60:
            return value
    return None


def _api_message(exc: Any) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    return str(error.get("message")) if isinstance(error, dict) else str(exc.message)


def _api_key(variable: str) -> str:
    key = os.environ.get(variable, "").strip()
    if not key:
        raise ArlError(f"the anthropic agent needs an API key in ${variable}",
                       hint=f"export {variable}=... (in GitHub: a repository secret passed through env:)")
    return key


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:160]


def _brief(tool_input: Any) -> str:
    if isinstance(tool_input, dict) and "path" in tool_input:
        return str(tool_input["path"])
    return ""
