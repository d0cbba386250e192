"""The Action's job summary: the run's own figures, then the loop's story (golden files)."""

from __future__ import annotations

import pytest
from arl_bot.prbody import BodyContext
from arl_bot.summary import render_summary, run_elapsed

from tests import golden
from tests.sample_records import long_record, small_record

pytestmark = pytest.mark.unit

CTX = BodyContext(loop="curve", goal="minimize", metric="val_loss", run_url="https://github.com/o/r/actions/runs/8")


def test_second_run_matches_golden() -> None:
    record = small_record()
    run = [a for a in record.attempts if a.run_id == "run-2"]
    text = render_summary(record, run, CTX)
    golden.check("summary-run2.md", text)
    assert "| experiments | 4: 2 kept, 2 discarded, 0 crashed, 0 invalid |" in text
    assert "| val_loss | 0.032 → 0.024: -0.008 (-25.00%), better |" in text
    assert "| time | 8:00 (agent 2:40, evaluation 1:20) |" in text  # wall time from the run's notes


def test_run_time_comes_from_the_runs_own_notes() -> None:
    record = small_record()
    assert run_elapsed(record, [a for a in record.attempts if a.run_id == "run-1"]) == 15 * 60
    assert run_elapsed(record, []) is None


def test_a_long_run_stays_small() -> None:
    record = long_record(10_000)
    run = [a for a in record.attempts if a.experiment >= 5_000]
    text = render_summary(record, run, CTX)
    assert len(text) < 65_536
    assert "…and 4950 earlier in this run" in text
    golden.check("summary-10000.md", text)
