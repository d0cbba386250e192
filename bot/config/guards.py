"""Guards: checks (commands) and limits (on the other numbers an evaluation reports) a keep must also pass."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .base import TIMEOUT_MAX, Number, Strict, int_is_float
from .evaluate import Parse

NUMBER_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"  # a number an evaluation reports besides the metric


def _amount(value: Any) -> Any:
    """A change bound: a number in the value's own units, or a share of the best's value like `5%`."""
    if isinstance(value, str):
        text = value.strip()
        try:
            share = float(text[:-1]) if text.endswith("%") else math.nan
        except ValueError:
            share = math.nan
        if not math.isfinite(share) or share < 0:
            raise ValueError(f"{value!r} is not a percentage like `5%`; or give a number in the value's units")
        return text
    value = int_is_float(value)
    if isinstance(value, float) and value < 0:
        raise ValueError(f"must be 0 or more, not {value}")
    return value


Amount = Annotated[str | float, BeforeValidator(_amount)]


class Check(Strict):
    """A command that must exit 0, in the evaluation's sandbox, before a candidate may be kept."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")  # named in reasons, the record and the pull request
    command: str = Field(min_length=1)  # run in the evaluation's sandbox, on the tree the evaluation measured
    timeout: Number = Field(default=600.0, gt=0, le=TIMEOUT_MAX)  # seconds; a check that runs out fails


class Limit(Strict):
    """A bound on one number the evaluation reports; the change bounds compare with the best kept state."""

    max: Number | None = None  # the value may be at most this
    min: Number | None = None  # the value must be at least this
    # At most this far above the best kept state's value: in its units, or a share like 5%.
    max_increase: Amount | None = None
    max_decrease: Amount | None = None  # at most this far below the best kept state's value
    parse: str | None = None  # a regex with one group, matched line by line against the evaluation's output

    @field_validator("parse")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return Parse._compiles(value)  # the same rule as evaluate.parse.regex

    @model_validator(mode="after")
    def _bounded(self) -> Limit:
        if self.max is None and self.min is None and self.max_increase is None and self.max_decrease is None:
            raise ValueError("a limit needs `max`, `min`, `max_increase` or `max_decrease`")
        return self


class Guards(Strict):
    """What a keep must also pass: checks (commands) and limits (on the other numbers the evaluation reports)."""

    checks: list[Check] = Field(default_factory=list)
    limits: dict[Annotated[str, Field(pattern=NUMBER_NAME)], Limit] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> Guards:
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names):
            raise ValueError(f"check names must be unique: {names}")
        return self

    @property
    def active(self) -> bool:
        """Whether any guard is configured."""
        return bool(self.checks or self.limits)
