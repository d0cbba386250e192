"""A rejected push fetches, re-checks and retries once: notes pushed meanwhile are kept, other work stops us."""

from __future__ import annotations

from pathlib import Path

import pytest
from arl_bot.errors import ArlError
from arl_bot.git import Git
from arl_bot.github import notes
from arl_bot.loop import RunOptions, Session
from arl_bot.store import RecordStore

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


def test_someone_elses_experiments_stop_the_push_with_a_clear_message(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "5"], remote=True)
    assert lab.remote is not None
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1)).run()

    class RaceMidway:
        done = False

        def on_attempt(self, session: Session, attempt: object) -> None:
            if not self.done:  # another runner runs the same loop and pushes first
                self.done = True
                other = clone(tmp_path, lab.remote, "other")  # type: ignore[arg-type]
                Session(other, lab.config(), lab.loop(), RunOptions(experiments=1)).run()

    with pytest.raises(ArlError, match=r"another runner ran this loop|commits on origin"):
        Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=2),
                listeners=[RaceMidway()]).run()  # type: ignore[list-item]
    assert RecordStore(lab.repo, "demo").load() is not None  # what this clone did is still here
