"""The record on its own ref: round trips, damage is named and repairable, writers cannot clobber."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from arl_bot.errors import GitError, RecordError
from arl_bot.git import Git
from arl_bot.record import Attempt, Meta, Note
from arl_bot.store import RecordStore

from tests.labs import git

META = Meta(loop="demo", base_branch="main", base_sha="0" * 40, created_at="2026-01-01T00:00:00Z",
            goal="minimize", metric="score")


def repo(tmp_path: Path) -> Git:
    git(tmp_path, "init", "--quiet", "--initial-branch=main")
    (tmp_path / "f").write_text("x")
    git(tmp_path, "add", "f")
    git(tmp_path, "commit", "--quiet", "-m", "init")
    return Git(tmp_path)


def attempt(n: int, status: str = "discard", metric: float | None = 1.0) -> Attempt:
    return Attempt(experiment=n, status=status, metric=metric, description=f"idea {n}",  # type: ignore[arg-type]
                   parent="0" * 40, best_before=2.0, seeds={"1": metric})


def test_every_item_round_trips_and_the_checkout_is_untouched(tmp_path: Path) -> None:
    g = repo(tmp_path)
    store = RecordStore(g, "demo")
    store.create(META)
    store.append_attempt(attempt(0, "baseline", 2.0), "")
    store.append_attempt(attempt(1), "--- a/f\n+++ b/f\n")
    store.append_note(Note(kind="redirect", at="2026-01-01T00:00:01Z", data={"text": "try dropout"}), 0)
    record = store.load()
    assert record is not None
    assert record.meta == META
    assert record.attempts == [attempt(0, "baseline", 2.0), attempt(1)]
    assert record.redirects == ["try dropout"]
    assert store.diff(1) == "--- a/f\n+++ b/f\n" and store.diff(0) == ""
    assert git(tmp_path, "status", "--porcelain") == ""
    files = git(tmp_path, "ls-tree", "-r", "--name-only", store.ref).splitlines()
    assert "attempts/000/000001.json" in files and "diffs/000/000001.patch" in files


def test_attempts_are_sharded_by_thousand(tmp_path: Path) -> None:
    store = RecordStore(repo(tmp_path), "demo")
    store.create(META)
    store.append_attempt(attempt(1234), "")
    assert "attempts/001/001234.json" in git(tmp_path, "ls-tree", "-r", "--name-only", store.ref)


def test_a_damaged_item_is_named_and_repair_moves_it_aside(tmp_path: Path) -> None:
    g = repo(tmp_path)
    store = RecordStore(g, "demo")
    store.create(META)
    store.append_attempt(attempt(0, "baseline", 2.0), "")
    store.append_attempt(attempt(1), "")
    # Damage the record the way a half-written file would: a truncated line.
    truncated = attempt(2).to_json()[:40].encode()
    store._write({"attempts/000/000002.json": truncated}, "truncated")
    with pytest.raises(RecordError) as info:
        store.load()
    message = str(info.value)
    assert message.startswith("refs/autoresearch/demo/record:attempts/000/000002.json: cannot read")
    assert "arl-bot results --repair --loop demo" in message
    result = subprocess.run([sys.executable, "-m", "arl_bot.cli", "results", "--repair", "--loop", "demo"],
                            cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "moved damaged attempts/000/000002.json to damaged/attempts/000/000002.json" in result.stdout
    record = store.load()
    assert record is not None and [a.experiment for a in record.attempts] == [0, 1]
    kept_bytes = git(tmp_path, "show", f"{store.ref}:damaged/attempts/000/000002.json")
    assert kept_bytes.encode() == truncated  # nothing silently dropped


def test_a_second_writer_that_raced_fails_instead_of_losing_an_item(tmp_path: Path) -> None:
    g = repo(tmp_path)
    first, second = RecordStore(g, "demo"), RecordStore(g, "demo")
    first.create(META)
    first.append_attempt(attempt(1), "")
    head = second.head()
    first.append_attempt(attempt(2), "")
    # `second` believes the ref is still at `head`: its compare-and-swap must fail.
    second._indexed_commit = head
    original_head = second.head
    second.head = lambda: head  # type: ignore[method-assign]
    with pytest.raises(GitError):
        second.append_attempt(attempt(3), "")
    second.head = original_head  # type: ignore[method-assign]
    record = first.load()
    assert record is not None and [a.experiment for a in record.attempts] == [1, 2]


def test_creating_a_record_twice_is_refused(tmp_path: Path) -> None:
    store = RecordStore(repo(tmp_path), "demo")
    store.create(META)
    with pytest.raises(RecordError, match="already exists"):
        store.create(META)


def test_a_new_process_appends_without_losing_earlier_items_and_git_accepts_the_objects(tmp_path: Path) -> None:
    g = repo(tmp_path)
    first = RecordStore(g, "demo")
    first.create(META)
    first.append_attempt(attempt(0, "baseline", 2.0), "")
    first.append_attempt(attempt(1), "patch 1")
    first.append_note(Note(kind="run_start", at="t"), 0)
    later = RecordStore(Git(tmp_path), "demo")  # what a resumed run starts with: nothing cached
    later.append_attempt(attempt(2), "patch 2")
    later.append_note(Note(kind="run_end", at="t"), 1)
    record = later.load()
    assert record is not None
    assert [a.experiment for a in record.attempts] == [0, 1, 2]
    assert [n.kind for n in record.notes] == ["run_start", "run_end"]
    assert later.diff(1) == "patch 1"
    git(tmp_path, "fsck", "--strict", "--no-dangling")
