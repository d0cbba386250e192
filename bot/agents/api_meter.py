"""A metering proxy in front of the Messages API: every call an agent's CLI makes is priced, and none
starts that what is left of the cost cap could not pay for.

The CLI's own stdout reports a call's usage only after the fact, and a fast model makes several calls
between two reads of it; the proxy sees each request before it goes out and each response as it streams
back, so the record cannot miss a call and the cap holds however fast the replies are.
"""

from __future__ import annotations

import contextlib
import hmac
import http.client
import json
import math
import secrets
import socket
import sys
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .. import pricing
from ..errors import ArlError

DEFAULT_UPSTREAM = "https://api.anthropic.com"
MESSAGES = "/v1/messages"
ROUTES = (MESSAGES, "/v1/messages/count_tokens")  # all the CLI needs; anything else is not forwarded
BODY_BYTES = 64 * 1024 * 1024  # the API's own request limit is 32 MB
# A prompt's tokens are estimated as its request's bytes / 3: JSON escapes, tool schemas and numbers make a
# token rarely shorter than that (the prompt module estimates the same way), so the estimate errs high.
BYTES_PER_TOKEN = 3
# Headers that describe one hop, not the request (RFC 9110 §7.6.1), and ones the proxy sets itself.
HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                 "transfer-encoding", "upgrade", "host", "content-length", "accept-encoding"})


@dataclass
class _Call:
    model: str
    worst: Decimal  # what the call could cost at most: held back from the budget until it has ended
    usage: dict[str, Any] = field(default_factory=dict)  # the API's usage so far, as it sent it
    cost: Decimal = Decimal(0)
    open: bool = True


@dataclass
class Ledger:
    """Every call that went through the proxy, priced; and the decision whether the next one may start."""

    limit: Decimal | None  # what the experiment may spend; None: no cap
    override: pricing.Price | None = None  # agent.price, for every call
    on_stop: Callable[[str], None] = lambda reason: None  # told once, when a call is refused
    reason: str = ""  # why a call was refused: the CLI must stop
    unknown_model: str = ""
    calls: list[_Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def spent(self) -> Decimal:
        """What the calls cost, from the usage the API sent (a cut-off reply: what had arrived)."""
        with self._lock:
            return sum((call.cost for call in self.calls), Decimal(0))

    @property
    def usage(self) -> pricing.Usage:
        """The tokens of every call."""
        with self._lock:
            return sum((pricing.Usage.from_api(call.usage) for call in self.calls), pricing.Usage())

    def admit(self, request: dict[str, Any], size: int, one_hour: bool = False) -> _Call | str:
        """A new call, held against the budget at its worst case; or why it may not start."""
        model = str(request.get("model") or "")
        price = self.override or pricing.known(model)
        with self._lock:
            if self.reason:  # once refused, always: the experiment is over, whatever the next call would cost
                return self.reason
            if price is None:
                self.unknown_model = self.unknown_model or model
                return self._refuse(f"no price for model {model!r}")
            worst = worst_case(price, size, request, one_hour)
            held = sum((max(call.cost, call.worst) if call.open else call.cost for call in self.calls), Decimal(0))
            if self.limit is not None and held + worst > self.limit:
                spent = sum((call.cost for call in self.calls), Decimal(0))
                return self._refuse(f"cost cap: ${spent:.4f} spent of ${self.limit:.4f}; the next call could cost "
                                    f"up to ${worst:.4f}" + (f" (${held - spent:.4f} more is still in flight)"
                                                            if held > spent else ""))
            call = _Call(model=model, worst=worst)
            self.calls.append(call)
            return call

    def bill(self, call: _Call, usage: dict[str, Any], model: str = "") -> None:
        """Take a call's usage as the API reports it: counts are running totals, absent ones stay."""
        with self._lock:
            call.usage = {**call.usage, **{k: v for k, v in usage.items() if v is not None}}
            call.model = model or call.model
            price = self.override or pricing.known(call.model)
            if price is None:
                self.unknown_model = self.unknown_model or call.model
                self._refuse(f"no price for model {call.model!r}")
                return
            call.cost = price.cost(pricing.Usage.from_api(call.usage))
            spent = sum((each.cost for each in self.calls), Decimal(0))
            if self.limit is not None and spent >= self.limit:  # only if a reply outgrew its worst case
                self._refuse(f"cost cap: ${spent:.4f} spent of ${self.limit:.4f}")

    def end(self, call: _Call) -> None:
        """The call is over: only what it cost stays held."""
        with self._lock:
            call.open = False

    def _refuse(self, reason: str) -> str:
        if not self.reason:
            self.reason = reason
            self.on_stop(reason)
        return reason


def worst_case(price: pricing.Price, size: int, request: dict[str, Any], one_hour: bool = False) -> Decimal:
    """The most a call could cost: every prompt token at the dearest prompt price, and max_tokens of output.

    A prompt token costs at most a cache write's price (a 1-hour write's, when the request asks for one);
    an uncached token or a cache read costs less.
    """
    prompt = math.ceil(size / BYTES_PER_TOKEN)
    per_prompt = max(price.input, price.cache_write, price.cache_write_1h if one_hour else Decimal(0))
    max_tokens = request.get("max_tokens")
    output = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else 0
    return (prompt * per_prompt + output * price.output) / pricing.MILLION


class MeteringProxy:
    """An HTTP server on 127.0.0.1 (an ephemeral port) that forwards the CLI's Messages API calls upstream.

    With `api_key`, the CLI gets `placeholder` instead of the key: the proxy forwards only requests that
    carry it, and puts the real key on the outbound request, so the key never enters the sandbox, where
    the model's own commands run, and any other process on the host cannot spend it through the proxy.
    """

    def __init__(self, ledger: Ledger, upstream: str | None = None, api_key: str | None = None,
                 timeout: float = 600) -> None:
        self.ledger = ledger
        self.upstream = urllib.parse.urlsplit((upstream or DEFAULT_UPSTREAM).rstrip("/"))
        if self.upstream.scheme not in ("http", "https") or not self.upstream.hostname:
            raise ArlError(f"ANTHROPIC_BASE_URL is not an http(s) URL: {upstream!r}",
                           hint="set it to the API's base URL, e.g. https://api.anthropic.com, or unset it")
        self.api_key = api_key
        self.placeholder = f"arl-bot-meter-{secrets.token_hex(16)}" if api_key else None
        self.timeout = timeout
        self._open: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()
        # Loopback only, on a port the kernel picks: nothing off this host can reach the meter.
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="api-meter")

    @property
    def url(self) -> str:
        """The base URL the CLI gets (ANTHROPIC_BASE_URL)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> MeteringProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, and cut every upstream call still open: a reply nobody reads is not generated on."""
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            if connection.sock is not None:
                with contextlib.suppress(OSError):
                    connection.sock.shutdown(socket.SHUT_RDWR)
        for call in self.ledger.calls:
            self.ledger.end(call)

    def connect(self) -> http.client.HTTPConnection:
        """A connection to the upstream API, closed with the proxy."""
        host, port = self.upstream.hostname or "", self.upstream.port
        connection = (http.client.HTTPSConnection(host, port, timeout=self.timeout)
                      if self.upstream.scheme == "https" else
                      http.client.HTTPConnection(host, port, timeout=self.timeout))
        with self._lock:
            self._open.add(connection)
        return connection

    def disconnect(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._open.discard(connection)
        connection.close()

    def authorised(self, headers: dict[str, str]) -> bool:
        """Whether a request comes from the CLI (when the proxy holds the key); swaps in the real key."""
        if self.placeholder is None or self.api_key is None:
            return True  # the CLI holds its own token and sends it; the proxy lends nothing
        given = headers.pop("x-api-key", "")
        if not hmac.compare_digest(given.encode(), self.placeholder.encode()):
            return False
        headers["x-api-key"] = self.api_key
        return True


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A CLI that hangs up (stopped, or done with a keep-alive connection) is not the meter's failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(proxy: MeteringProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # the agent's log says what matters
            pass

        def do_POST(self) -> None:
            route = urllib.parse.urlsplit(self.path).path
            if route not in ROUTES:
                return self._error(404, "not_found_error", f"arl-bot's API meter does not forward {route}")
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= BODY_BYTES:
                return self._error(413, "request_too_large", "request too large for arl-bot's API meter")
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items() if k.lower() not in HOP}
            if not proxy.authorised(headers):
                return self._error(401, "authentication_error", "not a request of this experiment's agent")
            if route != MESSAGES:  # count_tokens: free, and not a model call
                return self._forward(body, headers, None)
            try:
                request = json.loads(body)
            except ValueError:
                request = None
            if not isinstance(request, dict):
                return self._error(400, "invalid_request_error", "the request body is not a JSON object")
            # Any "1h" in the body prices the prompt as a 1-hour cache write: the estimate errs high, never low.
            call = proxy.ledger.admit(request, len(body), one_hour=b'"1h"' in body)
            if isinstance(call, str):
                # 400: the CLI does not retry it; the agent stops the CLI right away anyway.
                return self._error(400, "invalid_request_error", f"arl-bot: {call}; the experiment stops here")
            try:
                self._forward(body, headers, call)
            finally:
                proxy.ledger.end(call)

        def do_GET(self) -> None:
            self._error(404, "not_found_error", "arl-bot's API meter forwards only POST /v1/messages")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

        def _forward(self, body: bytes, headers: dict[str, str], call: _Call | None) -> None:
            path = proxy.upstream.path + self.path
            headers["accept-encoding"] = "identity"  # the meter reads the usage in the reply
            connection = proxy.connect()
            try:
                try:
                    connection.request("POST", path, body=body, headers=headers)
                    response = connection.getresponse()
                except OSError as exc:
                    return self._error(502, "api_error", f"arl-bot's API meter could not reach the API: {exc}")
                streaming = "text/event-stream" in (response.getheader("content-type") or "")
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP:
                        self.send_header(key, value)
                if streaming:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    self._relay(response, call if response.status == 200 else None)
                else:
                    data = response.read()
                    if call is not None and response.status == 200:
                        _bill_message(proxy.ledger, call, data)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
            finally:
                proxy.disconnect(connection)

        def _relay(self, response: http.client.HTTPResponse, call: _Call | None) -> None:
            """Pass the event stream on as it arrives, billing each usage it carries before the CLI sees it."""
            pending = b""
            try:
                while chunk := response.read1(1 << 16):
                    if call is not None:
                        *lines, pending = (pending + chunk).split(b"\n")
                        for line in lines:
                            _bill_event(proxy.ledger, call, line)
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:  # the CLI went away (stopped), or the proxy closed: the upstream call ends too
                pass

        def _error(self, status: int, kind: str, message: str) -> None:
            data = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _bill_message(ledger: Ledger, call: _Call, data: bytes) -> None:
    try:
        message = json.loads(data)
    except ValueError:
        return
    if isinstance(message, dict) and isinstance(message.get("usage"), dict):
        ledger.bill(call, message["usage"], str(message.get("model") or ""))


def _bill_event(ledger: Ledger, call: _Call, line: bytes) -> None:
    """One SSE line: `message_start` holds the prompt's usage, `message_delta` the reply's running total."""
    if not line.startswith(b"data:"):
        return
    try:
        event = json.loads(line[5:])
    except ValueError:
        return
    if not isinstance(event, dict):
        return
    if event.get("type") == "message_start" and isinstance(event.get("message"), dict):
        message = event["message"]
        if isinstance(message.get("usage"), dict):
            ledger.bill(call, message["usage"], str(message.get("model") or ""))
    elif event.get("type") == "message_delta" and isinstance(event.get("usage"), dict):
        ledger.bill(call, event["usage"])
