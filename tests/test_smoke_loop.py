"""The loop on a real repository: keeps, discards and the branch."""

from __future__ import annotations

from pathlib import Path

from arl_bot.loop import RunOptions, Session
from arl_bot.store import RecordStore

from tests.labs import make_lab


def test_keeps_improvements_and_discards_the_rest(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "5", "6"])
    summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=4, dry_run=True)).run()
    statuses = [a.status for a in summary.record.attempts]
    assert statuses == ["baseline", "keep", "discard", "keep", "discard"]
    assert summary.record.best is not None and summary.record.best.metric == 5.0
    log = lab.git("log", "--format=%s", "main..autoresearch/demo").splitlines()
    assert log == ["set value to 5", "set value to 8"]
    assert RecordStore(lab.repo, "demo").load() == summary.record
