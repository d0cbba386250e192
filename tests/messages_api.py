"""A loopback stand-in for Anthropic's Messages API: scripted replies, real SSE streams, real errors.

One server for every test that needs a model: the `anthropic` SDK and the Claude Code CLI both talk to
it through ANTHROPIC_BASE_URL. A test scripts what the model says, turn by turn (text, tool calls, usage,
429/529 errors), and reads back every request it was sent.

    with MessagesAPI([tool_use("write_file", {"path": "a.txt", "content": "x"}), text("done")]) as api:
        client = anthropic.Anthropic(base_url=api.url, api_key="test")
        ...
        assert api.requests[1].body["messages"][-1]["content"][0]["type"] == "tool_result"
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ids = itertools.count(1)


@dataclass
class Turn:
    """One scripted assistant message."""

    content: list[dict[str, Any]]
    usage: dict[str, int] = field(default_factory=lambda: usage())
    stop_reason: str = "end_turn"
    delay_s: float = 0.0  # wait this long before answering (a slow model)
    stall_s: float = 0.0  # streaming: wait this long after message_start (a slow reply, already billed)
    model: str | None = None  # defaults to the model the request asked for


@dataclass
class Failure:
    """One scripted error: an HTTP status before any body, or an SSE `error` event mid-stream."""

    status: int = 529
    kind: str = "overloaded_error"
    message: str = "Overloaded"
    retry_after_ms: int | None = 20  # tests stay fast; the real API sends retry-after in seconds
    mid_stream: bool = False


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    served: str = ""  # for /v1/messages: "script", "side" or "fallback"

    @property
    def last_user_content(self) -> list[dict[str, Any]]:
        """The content blocks of the last user message (tool results live here)."""
        messages = self.body.get("messages") or []
        content = messages[-1]["content"] if messages else []
        return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def usage(input_tokens: int = 100, output_tokens: int = 20, cache_write: int = 0,
          cache_read: int = 0) -> dict[str, int]:
    """A usage block as the API reports it."""
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read}


def text(words: str, **kwargs: Any) -> Turn:
    """A turn that only talks and ends."""
    return Turn(content=[{"type": "text", "text": words}], **kwargs)


def tool_use(name: str, tool_input: dict[str, Any], *, say: str = "", **kwargs: Any) -> Turn:
    """A turn that calls one tool (optionally saying something first)."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": say}] if say else []
    blocks.append({"type": "tool_use", "id": f"toolu_{next(_ids):08d}", "name": name, "input": tool_input})
    return Turn(content=blocks, stop_reason="tool_use", **kwargs)


Item = Turn | Failure
# A side channel for requests that are not part of the scripted conversation (a CLI's title or
# quota probes): return a Turn to answer one without consuming the script, or None to let it through.
Side = Callable[[dict[str, Any]], Turn | None]


class MessagesAPI:
    """A threaded HTTP server on 127.0.0.1 that answers /v1/messages from a script."""

    def __init__(self, script: list[Item] | None = None, *, fallback: Turn | None = None,
                 side: Side | None = None) -> None:
        self.script: list[Item] = list(script or [])
        self.fallback = fallback or text("Nothing more to do.")
        self.side = side
        self.requests: list[Request] = []
        # The usage of every reply as far as it went out (a stream cut off: what its events had said):
        # what the API would bill.
        self.sent_usage: list[dict[str, int]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        """The base URL to give a client (ANTHROPIC_BASE_URL)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def conversation(self) -> list[Request]:
        """The /v1/messages requests that were answered from the script (side requests left out)."""
        return [r for r in self.messages_requests if r.served != "side"]

    @property
    def messages_requests(self) -> list[Request]:
        """Every POST to /v1/messages."""
        return [r for r in self.requests if r.path.split("?")[0] == "/v1/messages"]

    def push(self, *items: Item) -> None:
        """Add replies to the end of the script."""
        with self._lock:
            self.script.extend(items)

    def start(self) -> MessagesAPI:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MessagesAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next(self, request: Request) -> Item:
        answer = self.side(request.body) if self.side is not None else None
        with self._lock:
            if answer is not None:
                how, item = "side", answer
            elif self.script:
                how, item = "script", self.script.pop(0)
            else:
                how, item = "fallback", self.fallback
            self.requests.append(Request(request.method, request.path, request.headers, request.body, how))
            return item


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (a killed CLI, a closed keep-alive connection) is not a server failure.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(api: MessagesAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures anyway
            pass

        def do_GET(self) -> None:
            self._record({})
            self._json(404, _error_body("not_found_error", f"no route GET {self.path} on this stand-in"))

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            route = self.path.split("?")[0]
            if route != "/v1/messages":
                self._record(body)
            if route == "/v1/messages/count_tokens":
                self._json(200, {"input_tokens": max(1, len(json.dumps(body)) // 4)})
            elif route == "/v1/messages":
                self._messages(body)
            else:
                self._json(404, _error_body("not_found_error", f"no route POST {route} on this stand-in"))

        def _request(self, body: dict[str, Any]) -> Request:
            return Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)

        def _record(self, body: dict[str, Any]) -> None:
            with api._lock:
                api.requests.append(self._request(body))

        def _messages(self, body: dict[str, Any]) -> None:
            item = api._next(self._request(body))
            if isinstance(item, Failure) and not (item.mid_stream and body.get("stream")):
                headers = {"retry-after-ms": str(item.retry_after_ms)} if item.retry_after_ms is not None else {}
                self._json(item.status, _error_body(item.kind, item.message), headers)
                return
            if isinstance(item, Turn) and item.delay_s:
                time.sleep(item.delay_s)
            model = str(body.get("model") or "claude-sonnet-4-5")
            if body.get("stream"):
                self._stream(item, model)
            else:
                assert isinstance(item, Turn)
                self._json(200, _message(item, model))
                with api._lock:
                    api.sent_usage.append(dict(item.usage))

        def _stream(self, item: Item, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.send_header("request-id", f"req_{next(_ids):012d}")
            self.end_headers()
            self.close_connection = True
            sent: dict[str, int] = {}
            try:
                for event, data in _events(item, model):
                    self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                    if event == "message_start":
                        sent.update(data["message"]["usage"])
                        with api._lock:
                            api.sent_usage.append(sent)
                    elif event == "message_delta":
                        with api._lock:
                            sent.update(data["usage"])
                    if event == "ping" and isinstance(item, Turn) and item.stall_s:
                        time.sleep(item.stall_s)
            except ConnectionError:  # the client went away mid-stream (killed for time or money)
                pass

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("request-id", f"req_{next(_ids):012d}")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _message(turn: Turn, model: str) -> dict[str, Any]:
    return {"id": f"msg_{next(_ids):012d}", "type": "message", "role": "assistant",
            "model": turn.model or model, "content": turn.content, "stop_reason": turn.stop_reason,
            "stop_sequence": None, "usage": dict(turn.usage)}


def _events(item: Item, model: str) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events the real API sends for a message, in its order and shapes."""
    if isinstance(item, Failure):  # the API can fail after the 200 has gone out
        return [("message_start", {"type": "message_start", "message": {
                    **_message(Turn(content=[]), model), "stop_reason": None}}),
                ("error", _error_body(item.kind, item.message))]
    start = {**_message(item, model), "content": [], "stop_reason": None,
             "usage": {**item.usage, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start}),
                                                ("ping", {"type": "ping"})]
    for index, block in enumerate(item.content):
        if block["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "text", "text": ""}}))
            words = block["text"]
            for piece in [words[i : i + 16] for i in range(0, len(words), 16)]:
                events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                       "delta": {"type": "text_delta", "text": piece}}))
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {**block, "input": {}}}))
            encoded = json.dumps(block["input"])
            for piece in [encoded[i : i + 24] for i in range(0, len(encoded), 24)]:
                events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                       "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": item.stop_reason, "stop_sequence": None},
                                     "usage": {"output_tokens": item.usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events
