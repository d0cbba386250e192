"""The job chain's arithmetic, from the record alone: what a job may use, and what the next one inherits."""

from __future__ import annotations

import yaml
from arl_bot.config import Config, Loop
from arl_bot.github import chain
from arl_bot.record import Attempt, Meta, Note, Record

from tests.labs import value_config


def loop(budget: str) -> Loop:
    return Config.model_validate(yaml.safe_load(value_config(budget=budget))).loop("demo")


def record_after_a_job(hours_used_before: float, job_s: float, reason: str, *, handover: bool = True,
                       experiments: int | None = 10, tried_before: int = 0, tried_now: int = 3) -> Record:
    record = Record(meta=Meta(loop="demo", base_branch="main", base_sha="0" * 40,
                              created_at="2024-01-01T00:00:00Z", goal="minimize", metric="score"))
    record.attempts.append(Attempt(experiment=0, status="baseline", metric=1.0, description="baseline",
                                   parent="0" * 40, sha="0" * 40, mode="baseline"))
    for n in range(1, tried_now + 1):
        record.attempts.append(Attempt(experiment=n, status="discard", metric=2.0, description="x",
                                       parent="0" * 40, mode="improve"))
    notes = {"used_h": hours_used_before, "experiments": experiments, "tried": tried_before, "job_h": 23.0,
             "handover": handover}
    record.notes += [Note("run_start", "2024-01-01T00:00:00.000000Z", {"chain": notes}),
                     Note("run_end", f"2024-01-01T{int(job_s // 3600):02d}:{int(job_s % 3600 // 60):02d}:00.000000Z",
                          {"reason": reason})]
    return record


def test_a_job_gets_the_job_budget_and_hands_over_while_the_loop_has_hours_left() -> None:
    leg = chain.plan(loop("{experiments: 1000, hours: 72}"), None, continuing=False, job_h=23.0, experiments=None)
    assert leg.hours == 23.0 and leg.handover and leg.experiments == 1000
    assert chain.handed_over(leg, "hours: 23.00 h of 23 h used")
    assert not chain.handed_over(leg, "experiments: ran 1000 of 1000")


def test_the_next_job_continues_with_what_is_left_and_the_last_one_does_not_hand_over() -> None:
    done = record_after_a_job(46.0, 23 * 3600, "hours: 23.00 h of 23 h used", tried_before=0, tried_now=3)
    assert chain.pending(done) == (69.0, 7)
    leg = chain.plan(loop("{experiments: 10, hours: 72}"), done, continuing=True, job_h=23.0, experiments=None)
    assert leg.hours == 3.0 and leg.experiments == 7 and not leg.handover  # the loop's last 3 hours
    assert not chain.handed_over(leg, "hours: 3.00 h of 3 h used")


def test_only_a_continuation_inherits_and_only_a_job_budget_stop_is_a_hand_over() -> None:
    done = record_after_a_job(0.0, 3600, "hours: 1.00 h of 1 h used")
    fresh = chain.plan(loop("{experiments: 10, hours: 72}"), done, continuing=False, job_h=1.0, experiments=None)
    assert fresh.notes["used_h"] == 0 and fresh.experiments == 10
    assert chain.pending(record_after_a_job(0.0, 3600, "plateau: 5 experiments without a keep")) is None
    assert chain.pending(record_after_a_job(0.0, 3600, "hours: 1 h", handover=False)) is None


def test_job_budget_defaults_follow_the_runner_and_the_token() -> None:
    assert chain.job_hours(None, "github-hosted", app_tokens=True) == 5.5
    assert chain.job_hours(None, "self-hosted", app_tokens=False) == 23.0
    assert chain.job_hours(None, "self-hosted", app_tokens=True) is None
    assert chain.job_hours(2.0, "github-hosted", app_tokens=False) == 2.0


def test_a_damaged_chain_note_ends_the_chain_instead_of_crashing_the_job() -> None:
    done = record_after_a_job(0.0, 3600, "hours: 1.00 h of 1 h used")
    done.notes[0].data["chain"]["used_h"] = "lots"
    assert chain.pending(done) is None
    done.notes[0].data["chain"].update(used_h=1.0, experiments=[1])
    assert chain.pending(done) is None
