"""The optuna agent's search space as config: ints, floats (optionally log scale) and choices (pure)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PARAMS_SUFFIXES = (".json", ".yaml", ".yml", ".toml")
Choice = str | int | float | bool


class Param(BaseModel):
    """One searched value: exactly one of `int: [low, high]`, `float: [low, high]` or `choice: [...]`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    # An integer range [low, high].
    int_range: list[int] | None = Field(default=None, alias="int", min_length=2, max_length=2)
    # A float range [low, high].
    float_range: list[float] | None = Field(default=None, alias="float", min_length=2, max_length=2)
    choice: list[Choice] | None = Field(default=None, min_length=1)  # any strings, numbers or booleans
    log: bool = False  # sample on a log scale (ranges with low > 0 only)
    step: float | None = Field(default=None, gt=0)  # grid spacing; ints default to 1

    @field_validator("int_range", "float_range", mode="before")
    @classmethod
    def _numeric_strings(cls, value: Any) -> Any:
        # PyYAML reads `1e-4` (no dot) as a string; accept what is plainly meant as a number.
        if isinstance(value, list):
            return [_number(item) if isinstance(item, str) else item for item in value]
        return value

    @field_validator("step", mode="before")
    @classmethod
    def _step_number(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _number(value)
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _consistent(self) -> Param:
        given = [name for name, value in (("int", self.int_range), ("float", self.float_range),
                                          ("choice", self.choice)) if value is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `int: [low, high]`, `float: [low, high]` or `choice: [...]`"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.choice is not None:
            if self.log or self.step is not None:
                raise ValueError("`log` and `step` apply to int and float ranges, not to `choice`")
            if len({repr(c) for c in self.choice}) != len(self.choice):
                raise ValueError("`choice` lists a value twice")
            return self
        low, high = self.bounds
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise ValueError(f"the range needs low < high, both finite (got [{low:g}, {high:g}])")
        if self.log and low <= 0:
            raise ValueError(f"`log: true` needs low > 0 (got {low:g})")
        if self.log and self.step is not None:
            raise ValueError("give `log` or `step`, not both")
        if self.int_range is not None and self.step is not None and not float(self.step).is_integer():
            raise ValueError(f"an int range needs a whole `step` (got {self.step:g})")
        return self

    @property
    def kind(self) -> str:
        """"int", "float" or "choice"."""
        return "int" if self.int_range is not None else "float" if self.float_range is not None else "choice"

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a range."""
        pair = self.int_range if self.int_range is not None else self.float_range
        assert pair is not None, "a choice has no bounds"
        return float(pair[0]), float(pair[1])

    def contains(self, value: object) -> bool:
        """Whether value is a point of this space (what a parameter file may hold)."""
        if self.choice is not None:
            return any(type(value) is type(c) and value == c for c in self.choice)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.int_range is not None and not float(value).is_integer():
            return False
        low, high = self.bounds
        return low <= value <= high

    def show(self, value: object) -> str:
        """value as a description shows it."""
        return f"{value:.4g}" if isinstance(value, float) else str(value)


def check(params_file: str | None, space: dict[str, Param]) -> None:
    """Raise ValueError unless an optuna agent's settings can work."""
    if not params_file:
        raise ValueError("agent kind `optuna` needs `params_file:` (the JSON, YAML or TOML file it writes)")
    if not params_file.lower().endswith(PARAMS_SUFFIXES):
        raise ValueError(f"params_file {params_file!r} must end in one of: {', '.join(PARAMS_SUFFIXES)}")
    if not space:
        raise ValueError("agent kind `optuna` needs `space:`, e.g. {lr: {float: [1e-4, 1e-1], log: true}}")
    for key in space:
        if not key or any(not part for part in key.split(".")):
            raise ValueError(f"space key {key!r}: use a name, or dotted names for nested keys (a.b)")


def _number(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text  # let the type check report it
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
