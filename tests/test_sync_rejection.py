"""A rejected push fetches, takes in what was pushed meanwhile and retries: notes and other runners' work."""

from __future__ import annotations

from pathlib import Path

from arl_bot.git import Git
from arl_bot.github import notes
from arl_bot.loop import RunOptions, Session

from tests.labs import git, make_lab


def clone(tmp_path: Path, remote: Path, name: str) -> Git:
    target = tmp_path / name
    git(tmp_path, "clone", "--quiet", str(remote), str(target))
    return Git(target)


def test_a_stop_pushed_during_a_run_is_kept_and_the_run_still_lands(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "5"], remote=True)
    assert lab.remote is not None
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1)).run()

    class StopMidway:
        done = False

        def on_attempt(self, session: Session, attempt: object) -> None:
            if not self.done:  # someone comments `/autoresearch stop` while the run goes on
                self.done = True
                notes.add(clone(tmp_path, lab.remote, "gate"), "demo", "pause", {"by": "alice"})  # type: ignore[arg-type]

    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=2), listeners=[StopMidway()]).run()  # type: ignore[list-item]
    fresh = clone(tmp_path, lab.remote, "check")
    record = notes.load(fresh, "demo")
    assert record is not None
    assert record.paused and [n.kind for n in record.notes].count("pause") == 1
    assert [a.status for a in record.attempts] == ["baseline", "keep", "discard", "keep"]


def test_another_runner_s_work_is_taken_in_and_a_stale_keep_is_measured_again_on_top(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "5"], remote=True)
    assert lab.remote is not None
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1)).run()

    class RaceMidway:
        done = False

        def on_attempt(self, session: Session, attempt: object) -> None:
            if not self.done:  # another runner runs the same loop and pushes first: it keeps 5
                self.done = True
                other = clone(tmp_path, lab.remote, "other")  # type: ignore[arg-type]
                Session(other, lab.config(), lab.loop(), RunOptions(experiments=1, run_id="theirs")).run()

    # Ours writes 5 too, on the head it started from: its push is refused, the other runner's keep is taken
    # in, and our change, applied onto it, is measured again: 5 does not beat 5.
    summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=2, run_id="ours"),
                      listeners=[RaceMidway()]).run()
    fresh = clone(tmp_path, lab.remote, "check")
    record = notes.load(fresh, "demo")
    assert record is not None
    assert [a.experiment for a in record.attempts] == [0, 1, 2, 3, 4]  # unique and contiguous across runners
    assert [a.status for a in record.attempts] == ["baseline", "keep", "discard", "keep", "discard"]
    theirs, ours = record.attempts[3], record.attempts[4]
    assert (theirs.run_id, ours.run_id) == ("theirs", "ours")
    assert "re-measured on top of experiment 3" in ours.reason and ours.extra["stale"]["onto"] == theirs.sha
    assert fresh.rev("refs/heads/autoresearch/demo") == theirs.sha == lab.repo.rev("refs/heads/autoresearch/demo")
    assert summary.record.attempts[-1].experiment == 4  # this run's own record says so too
