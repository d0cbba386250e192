"""The strict base model every section derives from, and the field types and bounds they share."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

CONFIG_FILE = ".autoresearch.yml"
ALWAYS_PROTECTED = (CONFIG_FILE,)  # the agent may never rewrite its own rules


def int_is_float(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # a 400-digit integer: float() raises instead of giving inf
            raise ValueError(f"{len(str(abs(value)))}-digit number is too large") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {value}")
    return value


# Strict models refuse an int where a float is due; YAML writes `timeout: 600`, so numbers accept ints.
# No number in the config means anything as .inf or .nan: an infinite timeout or budget never ends a
# phase, a NaN target is never reached; `null` is how a budget says "no limit".
Number = Annotated[float, BeforeValidator(int_is_float), Field(allow_inf_nan=False)]
_DEVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:.-]{0,63}")  # an index (0), a UUID (GPU-…) or MIG-…


def device_id(value: Any) -> Any:
    """A device slot as CUDA_VISIBLE_DEVICES takes it: `0` and `"0"` alike, never a list or a comma."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if isinstance(value, str) and not _DEVICE.fullmatch(value):
        # A comma would hand one evaluation several GPUs, and another slot could name the same ones.
        raise ValueError(f"{value!r} is not one device: give an index (0) or a UUID (GPU-…), one per slot")
    return value


DAY = 86_400.0
TIMEOUT_MAX = 30 * DAY  # longer waits overflow the OS's timers (threading refuses ~1e10 s) and never end in practice
PID_MAX_LIMIT = 4_194_304  # the most processes Linux can ever have (kernel PID_MAX_LIMIT on 64-bit)


class Strict(BaseModel):
    # defer_build: a model's validator is built when it first validates, not at import; `arl-bot results`
    # and `--version` never validate a config, and import this module without paying for ~30 schemas.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)
