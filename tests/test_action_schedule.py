"""The schedule continues every open research PR that is not stopped; one failing loop does not stop the rest."""

from __future__ import annotations

import json
from pathlib import Path

from arl_bot.git import Git
from arl_bot.lock import LoopLock

from tests.action_world import world
from tests.labs import value_config


def two_loops() -> str:
    second = value_config(loop="other").split("loops:\n", 1)[1]
    return value_config(loop="demo") + second


def test_schedule_fans_out_open_loops_skips_stopped_ones_and_survives_a_failing_one(tmp_path: Path) -> None:
    with world(tmp_path, config_text=two_loops()) as w:
        assert w.dispatch(experiments=1, loop="demo").code == 0
        assert w.dispatch(experiments=1, loop="other").code == 0
        prs = {p["head_ref"]: p["number"] for p in w.github.pulls()}
        assert set(prs) == {"autoresearch/demo", "autoresearch/other"}

        gate = w.schedule(ARL_PHASE="gate")
        assert gate.outputs["run"] == "true"
        assert [t["loop"] for t in json.loads(gate.outputs["loops"])] == ["demo", "other"]

        # `demo` is busy elsewhere (its lock is held), `other` must still run.
        repo = Git(w.lab.root)
        with LoopLock(repo.common_dir / "autoresearch" / "demo.lock", "demo"):
            result = w.schedule(ARL_EXPERIMENTS="1")
        assert result.code == 1
        assert "::error title=arl-bot::demo:" in result.stdout
        other = w.record("other")
        assert other is not None and len(other.attempts) == 3  # baseline, the dispatch's one, the schedule's one
        demo = w.record("demo")
        assert demo is not None and len(demo.attempts) == 2  # untouched
        assert "### arl-bot: `other`" in result.summary and "`demo` failed" in result.summary
        failure = w.github.replies(prs["autoresearch/demo"])[-1]
        assert "arl-bot failed" in failure and "/autoresearch continue" in failure

        stopped, _ = w.comment(prs["autoresearch/other"], "/autoresearch stop")
        assert stopped.code == 0
        after = w.schedule(ARL_PHASE="gate")
        assert [t["loop"] for t in json.loads(after.outputs["loops"])] == ["demo"]


def test_the_schedule_runs_only_due_loops(tmp_path: Path) -> None:
    # `demo` continues every 12 hours and just ran; `other` has no cadence and runs at every tick.
    config = two_loops().replace("\n  demo:\n", "\n  demo:\n    schedule: {every: 12h}\n", 1)
    assert "every: 12h" in config
    with world(tmp_path, config_text=config) as w:
        assert w.dispatch(experiments=1, loop="demo").code == 0
        assert w.dispatch(experiments=1, loop="other").code == 0
        gate = w.schedule(ARL_PHASE="gate")
        assert [t["loop"] for t in json.loads(gate.outputs["loops"])] == ["other"]
        assert "demo is not due yet" in gate.stderr
        ran = w.schedule(ARL_EXPERIMENTS="1")
        assert ran.code == 0, ran.stdout + ran.stderr
        assert len(w.record("demo").attempts) == 2 and len(w.record("other").attempts) == 3  # type: ignore[union-attr]
        # A research job given no loop picks the same due loops the gate would.
        alone = w.schedule(ARL_PHASE="research", ARL_EXPERIMENTS="1")
        assert alone.code == 0, alone.stdout + alone.stderr
        assert len(w.record("demo").attempts) == 2 and len(w.record("other").attempts) == 4  # type: ignore[union-attr]


def test_due_loops_come_most_overdue_first_and_a_loop_that_never_ran_leads() -> None:
    from arl_bot.github.gate import due

    now = 100_000.0
    loops = [
        ("hourly-late-by-10m", 3600.0, now - 4200),
        ("daily-not-yet", 86400.0, now - 3600),
        ("every-tick", None, now - 300),
        ("never-ran", 3600.0, None),
        ("daily-late-by-2h", 86400.0, now - 86400 - 7200),
    ]
    assert due(loops, now) == ["never-ran", "daily-late-by-2h", "hourly-late-by-10m", "every-tick"]
