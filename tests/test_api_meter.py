"""The API meter: the ledger's admission rule (pure), and the proxy against the loopback Messages API."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from arl_bot import pricing
from arl_bot.agents.api_meter import Ledger, MeteringProxy, worst_case

from tests.messages_api import MessagesAPI, text, usage

SONNET = pricing.PRICES["claude-sonnet-4-6"]
REQUEST = {"model": "claude-sonnet-4-6", "max_tokens": 32_000, "messages": []}
# 3,000 bytes: at most 1,000 prompt tokens at the cache-write price, and 32,000 output tokens
WORST = (1000 * SONNET.cache_write + 32_000 * SONNET.output) / pricing.MILLION  # $0.48375


@pytest.mark.unit
def test_a_call_starts_only_if_its_worst_case_fits_beside_what_is_spent_and_in_flight() -> None:
    stops: list[str] = []
    ledger = Ledger(limit=Decimal(1), on_stop=stops.append)
    first, second = ledger.admit(REQUEST, 3000), ledger.admit(REQUEST, 3000)
    assert not isinstance(first, str) and not isinstance(second, str)  # 2 x $0.48375 fit in $1
    # Neither has reported any usage yet: both are still held at their worst, so a third could overshoot.
    third = ledger.admit(REQUEST, 3000)
    assert third == "cost cap: $0.0000 spent of $1.0000; the next call could cost up to $0.4838 " \
                    "($0.9675 more is still in flight)"
    assert stops == [third]
    # Once refused, always: even a call that would fit does not start, and the stop is said once.
    ledger.end(first)
    assert ledger.admit({**REQUEST, "max_tokens": 1}, 10) == third and stops == [third]


@pytest.mark.unit
def test_a_finished_call_holds_only_what_it_cost() -> None:
    ledger = Ledger(limit=Decimal(1))
    call = ledger.admit(REQUEST, 3000)
    assert not isinstance(call, str)
    ledger.bill(call, {**usage(1000, 1), "cache_creation": {"ephemeral_1h_input_tokens": 0}})  # message_start
    ledger.bill(call, {"output_tokens": 20_000})  # message_delta: a running total that replaces
    ledger.end(call)
    assert ledger.spent == Decimal("0.303") and ledger.usage.output_tokens == 20_000
    assert not isinstance(ledger.admit(REQUEST, 3000), str)  # $0.303 + $0.48375 fit
    assert isinstance(ledger.admit(REQUEST, 3000), str)


@pytest.mark.unit
def test_a_reply_that_outgrows_its_worst_case_stops_the_agent_as_it_streams() -> None:
    stops: list[str] = []
    ledger = Ledger(limit=Decimal(1), on_stop=stops.append)
    call = ledger.admit(REQUEST, 3000)
    assert not isinstance(call, str)
    ledger.bill(call, usage(400_000, 1))  # $1.2 of prompt: far more than 3,000 bytes could hold
    assert stops == ["cost cap: $1.2000 spent of $1.0000"] and ledger.spent == Decimal("1.200015")


@pytest.mark.unit
def test_the_worst_case_prices_the_prompt_as_its_dearest_cache_write() -> None:
    assert worst_case(SONNET, 3000, REQUEST) == WORST
    assert worst_case(SONNET, 3000, REQUEST, one_hour=True) == Decimal("0.486")  # 1,000 x $6 + 32,000 x $15
    assert worst_case(SONNET, 3000, {"model": "x"}) == Decimal("0.00375")  # no max_tokens: the API refuses it


@pytest.mark.unit
def test_a_model_without_a_price_starts_no_call_unless_the_loop_prices_it() -> None:
    ledger = Ledger(limit=None)
    assert ledger.admit({**REQUEST, "model": "claude-opus-9"}, 10) == "no price for model 'claude-opus-9'"
    assert ledger.unknown_model == "claude-opus-9"
    priced = Ledger(limit=None, override=pricing.Price.of(1, 1))
    assert not isinstance(priced.admit({**REQUEST, "model": "claude-opus-9"}, 10), str)


@pytest.fixture
def api() -> Iterator[MessagesAPI]:
    with MessagesAPI() as server:
        yield server


def post(proxy: MeteringProxy, path: str, body: dict[str, Any], key: str | None, method: str = "POST"
         ) -> tuple[int, bytes]:
    host, port = proxy.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"content-type": "application/json", **({"x-api-key": key} if key else {})}
    connection.request(method, path, body=json.dumps(body), headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def test_only_the_agents_messages_calls_are_forwarded_and_the_key_is_added_outside(api: MessagesAPI) -> None:
    with MeteringProxy(Ledger(limit=None), upstream=api.url, api_key="sk-ant-real") as proxy:
        assert proxy.url.startswith("http://127.0.0.1:") and proxy.placeholder is not None
        assert "sk-ant-real" not in proxy.placeholder
        assert post(proxy, "/v1/models", {}, proxy.placeholder, method="GET")[0] == 404
        assert post(proxy, "/v1/complete", {}, proxy.placeholder)[0] == 404
        assert post(proxy, "/v1/messages/batches", REQUEST, proxy.placeholder)[0] == 404
        # Another process on this host, without the experiment's placeholder, spends nothing through it.
        assert post(proxy, "/v1/messages", REQUEST, None)[0] == 401
        assert post(proxy, "/v1/messages", REQUEST, "sk-ant-real")[0] == 401
        assert api.requests == []
        status, data = post(proxy, "/v1/messages?beta=true", REQUEST, proxy.placeholder)
        assert status == 200 and json.loads(data)["content"][0]["text"] == "Nothing more to do."
        assert post(proxy, "/v1/messages/count_tokens", REQUEST, proxy.placeholder)[0] == 200
    assert [r.path for r in api.requests] == ["/v1/messages?beta=true", "/v1/messages/count_tokens"]
    assert {r.headers["x-api-key"] for r in api.requests} == {"sk-ant-real"}


def test_streamed_and_whole_replies_are_billed_as_the_api_sent_them(api: MessagesAPI) -> None:
    api.push(text("one", usage=usage(1000, 50, cache_read=2000)), text("two", usage=usage(300, 70, cache_write=500)))
    ledger = Ledger(limit=Decimal(10))
    with MeteringProxy(ledger, upstream=api.url, api_key="sk-ant-real") as proxy:
        status, data = post(proxy, "/v1/messages", {**REQUEST, "stream": True}, proxy.placeholder)
        assert status == 200 and b"event: message_delta" in data
        assert post(proxy, "/v1/messages", REQUEST, proxy.placeholder)[0] == 200
    sent = sum((SONNET.cost(pricing.Usage.from_api(u)) for u in api.sent_usage), Decimal(0))
    assert len(api.sent_usage) == 2 and ledger.spent == sent == Decimal("0.008175")
    assert (ledger.usage.prompt_tokens, ledger.usage.output_tokens) == (3800, 120)


def test_without_a_key_to_lend_the_agents_own_token_goes_through_unchanged(api: MessagesAPI) -> None:
    with MeteringProxy(Ledger(limit=None), upstream=api.url, api_key=None) as proxy:
        assert proxy.placeholder is None
        host, port = proxy.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("POST", "/v1/messages", body=json.dumps(REQUEST),
                           headers={"authorization": "Bearer sk-ant-oat-token"})
        assert connection.getresponse().status == 200
        connection.close()
    assert api.requests[0].headers["authorization"] == "Bearer sk-ant-oat-token"
