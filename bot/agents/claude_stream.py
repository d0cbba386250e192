"""Read Claude Code's `--output-format stream-json` events as they arrive: what it did, and its answer."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamMeter:
    """What the CLI did (for the log), its model, and its final `result` event.

    Cost is not read here: the CLI reports a call's usage only once the call is under way, so a stopped
    CLI's stream misses calls. The API meter (api_meter.py) sees every call; this stream serves the log.
    """

    model: str = ""  # from the init event
    result: dict[str, Any] | None = None  # the final `result` event
    actions: list[str] = field(default_factory=list)  # what the CLI did, for the log
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
    def reported_cost(self) -> float | None:
        """The CLI's own `total_cost_usd`, once it has finished (the log shows it beside the meter's)."""
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
        elif kind == "assistant" and isinstance(event.get("message"), dict):
            for block in event["message"].get("content") or []:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    target = (block.get("input") or {}).get("file_path") or (block.get("input") or {}).get("command")
                    self.actions.append(f"{block.get('name')} {str(target or '')[:120]}".strip())
        elif kind == "result":
            self.result = event
