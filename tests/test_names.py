"""Shared names are defined once (bot/names.py, a goal's direction in bot/noise.py), and record times are UTC."""

from __future__ import annotations

import calendar
import os
import re
import time
from pathlib import Path

import pytest
from arl_bot import names, noise
from arl_bot.config import Metric

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("backends/**/*.py")])

# What used to be spelt out in several modules, and the one module allowed to spell it now.
ONE_SOURCE = {
    r"""goal\s*[!=]=\s*["']minimize""": "bot/noise.py",  # a goal's direction
    r"""["']GH_TOKEN["']""": "bot/names.py",  # the variables no agent gets
    r"""f["'](refs/(heads/)?)?autoresearch[/-]""": "bot/names.py",  # branch and record refs
    r"""re\.compile\(r["']\^\[a-z0-9\]\[a-z0-9-\]""": "bot/names.py",  # the loop-name pattern
}


@pytest.mark.parametrize("pattern", sorted(ONE_SOURCE))
def test_a_shared_name_is_spelt_in_one_module(pattern: str) -> None:
    found = sorted({str(path.relative_to(ROOT)) for path in SOURCES
                    if re.search(pattern, path.read_text(encoding="utf-8"))})
    assert found == [ONE_SOURCE[pattern]]


def test_a_record_time_is_read_as_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    # A naive strptime(...).timestamp() reads the time as local: five hours off in New York.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        stamp = "2026-07-01T12:00:00.000000Z"
        assert names.parse_stamp(stamp).timestamp() == calendar.timegm((2026, 7, 1, 12, 0, 0))
        assert names.parse_stamp(names.now()).tzinfo is not None
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert os.environ.get("TZ") is None


def test_a_metrics_sign_points_the_goals_way() -> None:
    low, high = Metric(name="loss"), Metric(name="acc", goal="maximize")
    assert (low.sign, high.sign) == (-1.0, 1.0)
    assert noise.gain("minimize", 1.0, 2.0) == 1.0 and noise.gain("maximize", 1.0, 2.0) == -1.0
    assert low.at_least(0.5, 1.0) and not low.at_least(1.5, 1.0) and high.at_least(1.5, 1.0)
    assert (noise.better_end("minimize"), noise.better_end("maximize")) == ("lower", "higher")
