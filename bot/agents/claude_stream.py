"""Read Claude Code's `--output-format stream-json` events as they arrive: usage, cost, and the outcome."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .. import pricing


@dataclass
class _Call:
    model: str
    usage: pricing.Usage
    cost: Decimal = Decimal(0)


@dataclass
class StreamMeter:
    """Prices every model call the CLI makes while it runs; the result event's figures win at the end.

    With `--include-partial-messages` the CLI forwards the API's own `message_start` (the prompt's
    tokens, known as the call begins) and `message_delta` (the reply's tokens, when it ends) events, so
    the running cost is exact to the call, and the cap can act while a call is still streaming.
    """

    override: pricing.Price | None = None  # agent.price: charged for every call instead of the table
    model: str = ""  # from the init event
    calls: dict[str, _Call] = field(default_factory=dict)
    unknown_model: str = ""  # a model with no price: the run must stop, arl-bot does not guess
    result: dict[str, Any] | None = None  # the final `result` event
    actions: list[str] = field(default_factory=list)  # what the CLI did, for the log
    _current: dict[str, str] = field(default_factory=dict)  # per (sub)agent: the message in flight
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, line: str | bytes) -> None:
        """Take one line of the stream; lines that are not JSON events are ignored."""
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        with self._lock:
            self._event(event)

    @property
    def spent(self) -> Decimal:
        """The cost of every call seen so far, from the price table."""
        with self._lock:
            return sum((call.cost for call in self.calls.values()), Decimal(0))

    @property
    def usage(self) -> pricing.Usage:
        """Tokens of every call seen so far."""
        with self._lock:
            return sum((call.usage for call in self.calls.values()), pricing.Usage())

    @property
    def final_usage(self) -> pricing.Usage:
        """The CLI's own token totals once it has finished (side calls included), else what the stream showed."""
        reported = (self.result or {}).get("usage")
        return pricing.Usage.from_api(reported) if isinstance(reported, dict) else self.usage

    @property
    def reported_cost(self) -> float | None:
        """The CLI's own `total_cost_usd`, once it has finished."""
        value = (self.result or {}).get("total_cost_usd")
        return float(value) if isinstance(value, int | float) else None

    @property
    def result_text(self) -> str:
        """The final answer the CLI printed."""
        value = (self.result or {}).get("result")
        return value if isinstance(value, str) else ""

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            self.model = str(event.get("model") or "")
        elif kind == "stream_event" and isinstance(event.get("event"), dict):
            self._api_event(str(event.get("parent_tool_use_id") or ""), event["event"])
        elif kind == "assistant" and isinstance(event.get("message"), dict):
            message = event["message"]
            # Without partial messages (older CLIs) this is the only usage there is: use it once per message.
            ident = str(message.get("id") or "")
            if ident and ident not in self.calls and isinstance(message.get("usage"), dict):
                self._start(ident, str(message.get("model") or self.model), message["usage"])
            for block in message.get("content") or []:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    target = (block.get("input") or {}).get("file_path") or (block.get("input") or {}).get("command")
                    self.actions.append(f"{block.get('name')} {str(target or '')[:120]}".strip())
        elif kind == "result":
            self.result = event

    def _api_event(self, agent: str, event: dict[str, Any]) -> None:
        if event.get("type") == "message_start" and isinstance(event.get("message"), dict):
            message = event["message"]
            ident = str(message.get("id") or f"call-{len(self.calls)}")
            self._current[agent] = ident
            self._start(ident, str(message.get("model") or self.model), message.get("usage") or {})
        elif event.get("type") == "message_delta" and agent in self._current:
            call = self.calls.get(self._current[agent])
            usage = event.get("usage")
            if call is not None and isinstance(usage, dict):
                # Counts on message_delta are running totals: they replace, and absent ones stay.
                merged = {**_as_api(call.usage), **{k: v for k, v in usage.items() if v is not None}}
                call.usage = pricing.Usage.from_api(merged)
                self._price(call)

    def _start(self, ident: str, model: str, usage: dict[str, Any]) -> None:
        call = _Call(model=model, usage=pricing.Usage.from_api(usage))
        self.calls[ident] = call
        self._price(call)

    def _price(self, call: _Call) -> None:
        price = self.override or pricing.known(call.model)
        if price is None:
            self.unknown_model = self.unknown_model or call.model
            return
        call.cost = price.cost(call.usage)


def _as_api(usage: pricing.Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": usage.cache_write_tokens,
            "cache_read_input_tokens": usage.cache_read_tokens,
            "cache_creation": {"ephemeral_1h_input_tokens": usage.cache_write_1h_tokens}}
