"""Where each experiment starts and in which mode: improve the best, explore now and then, diversify on a plateau."""

from __future__ import annotations

from pathlib import Path

import pytest
from arl_bot.config import Metric, StrategyConfig
from arl_bot.loop import RunOptions, Session
from arl_bot.record import Attempt, Meta, Record
from arl_bot.strategy import Plan, choose, plateau, ranked

from tests.labs import make_lab, value_config

MIN = Metric(name="score", goal="minimize")


def record_of(*entries: tuple[str, float | None]) -> Record:
    """A record from (status, metric) pairs; kept ones get commit ids sha-<n>."""
    record = Record(meta=Meta(loop="demo", base_branch="main", base_sha="sha-0", created_at="",
                              goal="minimize", metric="score"))
    for number, (status, metric) in enumerate(entries):
        kept = status in ("baseline", "keep")
        record.attempts.append(Attempt(experiment=number, status=status, metric=metric,  # type: ignore[arg-type]
                                       description=f"idea {number}", parent="", sha=f"sha-{number}" if kept else None))
    return record


@pytest.mark.unit
def test_improves_the_head_by_default() -> None:
    record = record_of(("baseline", 10.0), ("keep", 9.0))
    assert choose(StrategyConfig(), MIN, record, "sha-1") == Plan(start="sha-1", mode="improve")


@pytest.mark.unit
def test_every_nth_experiment_explores_from_the_head() -> None:
    settings = StrategyConfig(explore_every=3, diversify_after=None)
    record = record_of(("baseline", 10.0), ("keep", 9.0), ("discard", 9.5))
    assert record.next_experiment == 3
    assert choose(settings, MIN, record, "sha-1") == Plan(start="sha-1", mode="explore")
    record.attempts.append(Attempt(experiment=3, status="keep", metric=8.0, description="", parent="", sha="sha-3"))
    assert choose(settings, MIN, record, "sha-3").mode == "improve"
    assert choose(StrategyConfig(explore_every=None, diversify_after=None), MIN,
                  record_of(("baseline", 1.0), ("keep", 0.9), ("keep", 0.8)), "sha-2").mode == "improve"


@pytest.mark.unit
def test_a_plateau_diversifies_from_the_other_best_states_in_turn() -> None:
    settings = StrategyConfig(explore_every=None, diversify_after=2, top_k=2)
    # kept: 0 (10.0), 1 (7.0), 2 (8.0 ... kept while better than the best at the time in a noisy loop), 3 (6.0, head)
    record = record_of(("baseline", 10.0), ("keep", 7.0), ("keep", 8.0), ("keep", 6.0), ("discard", 6.5))
    assert choose(settings, MIN, record, "sha-3").mode == "improve"  # one miss: not yet a plateau
    record.attempts.append(Attempt(experiment=5, status="crash", metric=None, description="", parent=""))
    assert plateau(record) == 2
    # the two best kept states besides the head, best first: experiment 1 (7.0), then 2 (8.0)
    assert choose(settings, MIN, record, "sha-3") == Plan(start="sha-1", mode="diversify")
    record.attempts.append(Attempt(experiment=6, status="invalid", metric=None, description="", parent=""))
    assert choose(settings, MIN, record, "sha-3").mode == "improve"  # between diversifications, focus again
    record.attempts.append(Attempt(experiment=7, status="discard", metric=7.0, description="", parent=""))
    assert choose(settings, MIN, record, "sha-3") == Plan(start="sha-2", mode="diversify")
    for n in (8, 9):
        record.attempts.append(Attempt(experiment=n, status="discard", metric=7.0, description="", parent=""))
    assert choose(settings, MIN, record, "sha-3") == Plan(start="sha-1", mode="diversify")  # round again


@pytest.mark.unit
def test_a_keep_ends_the_plateau_and_interruptions_do_not_count() -> None:
    record = record_of(("baseline", 10.0), ("discard", 11.0), ("discard", 12.0), ("keep", 9.0), ("discard", 9.5),
                       ("interrupted", None), ("crash", None))
    assert plateau(record) == 2


@pytest.mark.unit
def test_without_another_kept_state_a_plateau_keeps_improving() -> None:
    settings = StrategyConfig(explore_every=None, diversify_after=2)
    record = record_of(("baseline", 10.0), ("discard", 11.0), ("discard", 12.0))
    assert choose(settings, MIN, record, "sha-0") == Plan(start="sha-0", mode="improve")


@pytest.mark.unit
def test_ranking_follows_the_goal() -> None:
    record = record_of(("baseline", 1.0), ("keep", 3.0), ("keep", 2.0), ("discard", 5.0))
    assert [a.experiment for a in ranked(record, MIN)] == [0, 2, 1]
    assert [a.experiment for a in ranked(record, Metric(name="acc", goal="maximize"))] == [1, 2, 0]


def test_the_loop_records_mode_and_parent_and_a_diversified_keep_lands_on_the_head(tmp_path: Path) -> None:
    # values: 8 keep, 9 discard, 9 discard -> plateau of 2 -> experiment 4 starts from the baseline
    lab = make_lab(tmp_path, ["8", "9", "9", "7", "6"], config_text=value_config(
        budget="{experiments: 5}", extra="strategy: {explore_every: null, diversify_after: 2, top_k: 3}"))
    summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True)).run()
    attempts = summary.record.attempts
    baseline_sha, first_keep = attempts[0].sha, attempts[1].sha
    assert [(a.status, a.mode) for a in attempts] == [
        ("baseline", "baseline"), ("keep", "improve"), ("discard", "improve"), ("discard", "improve"),
        ("keep", "diversify"), ("keep", "improve")]
    assert attempts[4].parent == baseline_sha and attempts[2].parent == first_keep
    log = lab.git("log", "--format=%s", "main..autoresearch/demo").splitlines()
    assert log == ["set value to 6", "set value to 7", "set value to 8"]  # linear: the diversified keep is on top
