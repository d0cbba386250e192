"""The price table: exact cost from usage, snapshots priced as their alias, unknown models refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from arl_bot import config, pricing
from arl_bot.decide import RunState, stop_reason

from tests.labs import value_config

pytestmark = pytest.mark.unit


def test_cost_is_exact_for_every_kind_of_token() -> None:
    usage = pricing.Usage.from_api({
        "input_tokens": 300, "output_tokens": 40, "cache_creation_input_tokens": 1250,
        "cache_read_input_tokens": 3000, "cache_creation": {"ephemeral_1h_input_tokens": 1000},
    })
    # sonnet: $3 in, $15 out, $3.75 per 5-minute cache write, $6 per 1-hour write, $0.30 per cache read
    expected = (300 * Decimal(3) + 40 * Decimal(15) + 250 * Decimal("3.75") + 1000 * Decimal(6)
                + 3000 * Decimal("0.3")) / 1_000_000
    assert pricing.price_for("claude-sonnet-4-5").cost(usage) == expected == Decimal("0.0093375")
    assert usage.prompt_tokens == 300 + 1250 + 3000


def test_dated_snapshots_cost_what_their_alias_costs() -> None:
    assert pricing.price_for("claude-sonnet-4-5-20250929") == pricing.PRICES["claude-sonnet-4-5"]
    assert pricing.price_for("claude-opus-4-20250514") == pricing.PRICES["claude-opus-4"]
    assert pricing.price_for("claude-opus-4-5").input == Decimal(5)
    assert pricing.price_for("claude-haiku-4-5").output == Decimal(5)


def test_an_unknown_model_is_an_error_not_a_guess() -> None:
    with pytest.raises(pricing.UnknownModelError) as caught:
        pricing.price_for("claude-opus-4-9")  # looks like claude-opus-4, but nothing is inferred
    assert "agent: {price:" in str(caught.value)
    explicit = pricing.Price.of(2, 8)
    assert pricing.price_for("claude-opus-4-9", explicit) is explicit
    assert explicit.cache_write == Decimal("2.5") and explicit.cache_read == Decimal("0.2")


def test_the_config_can_set_a_price() -> None:
    text = value_config(agent="{kind: anthropic, model: my-proxy, price: {input: 1, output: 4, cache_read: 0.05}}")
    agent = config.parse(text).loop(None).agent
    price = pricing.configured(agent.price)
    assert price is not None
    assert (price.input, price.output, price.cache_write, price.cache_read) == (
        Decimal("1.0"), Decimal("4.0"), Decimal("1.25"), Decimal("0.05"))
    with pytest.raises(config.ConfigError, match=r"price\.outpt"):
        config.parse(value_config(agent="{kind: anthropic, price: {input: 1, outpt: 4}}"))


def test_the_loop_stops_before_an_experiment_it_cannot_afford() -> None:
    loop = config.parse(value_config(budget="{experiments: 10, cost_usd: 1.0}")).loop(None)
    state = RunState()
    assert stop_reason(loop.budget, loop.metric, state, 5.0, None) is None
    state.count("keep", 0.30)
    assert stop_reason(loop.budget, loop.metric, state, 5.0, None) is None  # 0.30 + 0.30 fits in 1.00
    state.count("discard", 0.45)
    reason = stop_reason(loop.budget, loop.metric, state, 5.0, None)  # 0.75 + 0.45 would not
    assert reason == "cost: $0.7500 of $1.00 spent; the next experiment could cost $0.4500 (the dearest so far)"
    state.count("crash", 0.25)
    assert stop_reason(loop.budget, loop.metric, state, 5.0, None) == "cost: $1.00 of $1.00 spent"
    free = RunState()
    free.count("keep", 0.0)  # agents that cost nothing (optuna, command) are never stopped by the cap early
    assert stop_reason(loop.budget, loop.metric, free, 5.0, None) is None


def test_the_loop_stops_when_an_agent_stopped_at_the_cap() -> None:
    # Experiment 2's agent spent $0.10, then the cap refused its next call (worst case above what was left).
    # The dearest experiment ($0.30) still fits in what is left, but no call of the next agent would.
    loop = config.parse(value_config(budget="{experiments: 10, cost_usd: 1.0}")).loop(None)
    state = RunState()
    state.count("keep", 0.30)
    state.count("crash", 0.10, capped=2)
    assert stop_reason(loop.budget, loop.metric, state, 5.0, None) == (
        "cost: $0.4000 of $1.00 spent; experiment 2's agent stopped at the cap, what is left cannot pay for "
        "another call")
