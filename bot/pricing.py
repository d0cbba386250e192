"""What a model call costs: one price table for every Claude model, and exact cost from usage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import ArlError

if TYPE_CHECKING:
    from .config import PriceConfig

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens of each kind."""

    input: Decimal
    output: Decimal
    cache_write: Decimal  # 5-minute cache writes: 1.25 x input on every current model
    cache_read: Decimal  # cache hits: 0.1 x input
    cache_write_1h: Decimal  # 1-hour cache writes: 2 x input

    @classmethod
    def of(cls, input: float, output: float, cache_write: float | None = None,
           cache_read: float | None = None, cache_write_1h: float | None = None) -> Price:
        """A price from per-million-token figures; cache prices default to Anthropic's multipliers."""
        base = Decimal(str(input))
        return cls(
            input=base, output=Decimal(str(output)),
            cache_write=Decimal(str(cache_write)) if cache_write is not None else base * Decimal("1.25"),
            cache_read=Decimal(str(cache_read)) if cache_read is not None else base * Decimal("0.1"),
            cache_write_1h=Decimal(str(cache_write_1h)) if cache_write_1h is not None else base * 2,
        )

    def cost(self, usage: Usage) -> Decimal:
        """The exact cost of usage, in dollars."""
        five_minute = usage.cache_write_tokens - usage.cache_write_1h_tokens
        return (usage.input_tokens * self.input + usage.output_tokens * self.output
                + five_minute * self.cache_write + usage.cache_write_1h_tokens * self.cache_write_1h
                + usage.cache_read_tokens * self.cache_read) / MILLION


@dataclass(frozen=True)
class Usage:
    """Tokens of one call or of several, as the Messages API counts them."""

    input_tokens: int = 0  # uncached prompt tokens
    output_tokens: int = 0
    cache_write_tokens: int = 0  # prompt tokens written to the cache (all TTLs)
    cache_read_tokens: int = 0  # prompt tokens read from the cache
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens written with the 1-hour TTL

    @classmethod
    def from_api(cls, usage: dict[str, Any]) -> Usage:
        """Read an API `usage` object (a dict; missing or null counts are 0)."""
        def count(key: str, source: dict[str, Any] = usage) -> int:
            value = source.get(key)
            return int(value) if isinstance(value, int | float) else 0

        detail = usage.get("cache_creation")
        write = count("cache_creation_input_tokens")
        return cls(
            input_tokens=count("input_tokens"), output_tokens=count("output_tokens"),
            cache_write_tokens=write, cache_read_tokens=count("cache_read_input_tokens"),
            cache_write_1h_tokens=min(write, count("ephemeral_1h_input_tokens", detail))
            if isinstance(detail, dict) else 0,
        )

    @property
    def prompt_tokens(self) -> int:
        """Every prompt token, cached or not: what the record calls tokens in."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(a + b for a, b in zip(self._counts(), other._counts(), strict=True)))

    def _counts(self) -> tuple[int, int, int, int, int]:
        return (self.input_tokens, self.output_tokens, self.cache_write_tokens, self.cache_read_tokens,
                self.cache_write_1h_tokens)


# Anthropic's list prices, USD per million tokens (input, output, 5-min cache write, cache read), as
# published on https://www.anthropic.com/pricing and as Claude Code 2.1.197 prices them. Long-context
# (>200k input tokens) and fast-mode surcharges are not modelled: set `agent.price` for those.
_SONNET = Price.of(3, 15, 3.75, 0.30)
_OPUS_4 = Price.of(15, 75, 18.75, 1.50)
_OPUS_45 = Price.of(5, 25, 6.25, 0.50)
_FIVE = Price.of(10, 50, 12.5, 1.00)
PRICES: dict[str, Price] = {
    "claude-3-5-haiku": Price.of(0.80, 4, 1.00, 0.08),
    "claude-haiku-4-5": Price.of(1, 5, 1.25, 0.10),
    "claude-3-5-sonnet": _SONNET,
    "claude-3-7-sonnet": _SONNET,
    "claude-sonnet-4": _SONNET,
    "claude-sonnet-4-0": _SONNET,
    "claude-sonnet-4-5": _SONNET,
    "claude-sonnet-4-6": _SONNET,
    "claude-sonnet-5": _SONNET,
    "claude-opus-4": _OPUS_4,
    "claude-opus-4-0": _OPUS_4,
    "claude-4-opus": _OPUS_4,
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4-5": _OPUS_45,
    "claude-opus-4-6": _OPUS_45,
    "claude-opus-4-7": _OPUS_45,
    "claude-opus-4-8": _OPUS_45,
    "claude-fable-5": _FIVE,
    "claude-mythos-5": _FIVE,
}
# A dated snapshot (claude-sonnet-4-5-20250929) costs what its alias costs; nothing else is inferred,
# so claude-opus-4-9 is unknown rather than silently priced like claude-opus-4.
_SNAPSHOT = re.compile(r"^(?P<alias>.+?)(?:-\d{8}|@\d{8}|-latest)?$")


class UnknownModelError(ArlError):
    """A model the price table does not know, with no explicit price in the config."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"no price for model {model!r}: arl-bot will not guess what it costs",
            hint="set `agent: {price: {input: 3, output: 15}}` (USD per million tokens) in .autoresearch.yml, "
                 f"or use one of: {', '.join(sorted(PRICES))}",
        )
        self.model = model


def known(model: str) -> Price | None:
    """The table's price for model (an alias or a dated snapshot of one), or None."""
    name = model.strip().lower().removeprefix("anthropic/")
    if name in PRICES:
        return PRICES[name]
    match = _SNAPSHOT.match(name)
    return PRICES.get(match.group("alias")) if match else None


def price_for(model: str, override: Price | None = None) -> Price:
    """The price to charge for model: the config's explicit price, else the table's, else an error."""
    if override is not None:
        return override
    price = known(model)
    if price is None:
        raise UnknownModelError(model)
    return price


def configured(price: PriceConfig | None) -> Price | None:
    """The explicit price from `agent.price`, if any."""
    if price is None:
        return None
    return Price.of(price.input, price.output, price.cache_write, price.cache_read)


def dollars(amount: Decimal) -> float:
    """A cost as the record stores it."""
    return float(amount)
