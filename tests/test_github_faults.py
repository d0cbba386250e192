"""GitHub misbehaving during a loop: 500s, rate limits, hangs, and a bot killed mid-update.

The record on the branch is the truth and the pull-request body only a view: whatever GitHub does,
experiments land in git, and the body catches up at the next update that gets through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from arl_bot.record import Record
from arl_bot.store import RecordStore

from tests.action_world import World, world
from tests.webhooks import comment_payload


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as made:
        assert made.dispatch(experiments=1).code == 0  # the research PR exists
        yield made


def record(w: World) -> Record:
    loaded = w.record()
    assert loaded is not None
    return loaded


def shows(body: str, experiment: int) -> bool:
    return f"| {experiment} |" in body


def test_a_pr_update_failing_for_good_does_not_stop_the_loop_and_the_body_catches_up(w: World) -> None:
    w.github.inject("500", method="PATCH", path="/pulls/", times=1000)
    started = time.monotonic()
    result, _ = w.comment(1, "/autoresearch continue 3", ARL_GITHUB_BACKOFF="0.05")
    assert time.monotonic() - started < 60  # the experiments never waited on GitHub's retries
    # The experiments ran and landed; the run is red so that someone looks at the stale pull request.
    assert result.code == 1
    assert "the loop ran, but its pull request could not be updated" in result.stdout + result.stderr
    after = record(w)
    assert len(after.attempts) == 5 and not shows(w.pr_body(), 4)  # in git, not yet on the PR
    w.github.faults.clear()
    result, _ = w.comment(1, "/autoresearch continue 1")
    assert result.code == 0, result.stderr
    body = w.pr_body()
    assert all(shows(body, n) for n in range(6))  # rebuilt from the record: nothing missed


def test_a_secondary_rate_limit_is_waited_out_and_the_body_stays_current(w: World) -> None:
    w.github.inject("secondary", method="PATCH", path="/pulls/", times=2, retry_after=1)
    started = time.monotonic()
    result, _ = w.comment(1, "/autoresearch continue 2")
    assert result.code == 0, result.stderr
    assert time.monotonic() - started >= 1  # Retry-After was respected
    assert "could not update" not in result.stderr
    assert shows(w.pr_body(), 3)


def test_a_hanging_connection_times_out_and_the_loop_goes_on(w: World) -> None:
    w.github.inject("hang", method="PATCH", path="/pulls/", times=1, hang_s=20)
    result, _ = w.comment(1, "/autoresearch continue 2", ARL_GITHUB_TIMEOUT="2")
    assert result.code == 0, result.stderr
    assert len(record(w).attempts) == 4
    assert shows(w.pr_body(), 3)


def test_sigkill_while_updating_the_pr_then_run_again(w: World, tmp_path: Path) -> None:
    hang = w.github.inject("hang", method="PATCH", path="/pulls/", times=1000, hang_s=60)
    before = len(record(w).attempts)
    made = w.github.add_comment(1, "alice", "/autoresearch continue 3")
    event = tmp_path / "killed-event.json"
    event.write_text(json.dumps(comment_payload(made, 1)))
    env = {**os.environ, "GITHUB_EVENT_NAME": "issue_comment", "GITHUB_EVENT_PATH": str(event),
           "GITHUB_REPOSITORY": w.github.full_name, "GITHUB_API_URL": w.github.url,
           "GITHUB_SERVER_URL": "https://github.example", "GITHUB_RUN_ID": "4343", "GITHUB_TOKEN": w.github.token,
           "GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
           "ARL_GITHUB_TIMEOUT": "120", "ARL_GITHUB_PACE": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "arl_bot.cli", "action"], cwd=w.lab.root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while hang.times == 1000 or len(RecordStore(w.lab.repo, "demo").load().attempts) < before + 1:  # type: ignore[union-attr]
        # an update is hanging and an experiment has been recorded since: kill the bot right there
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    w.github.faults.clear()
    killed = record(w)
    assert len(killed.attempts) >= before + 1  # what was recorded before the kill is on the remote
    result, _ = w.comment(1, "/autoresearch continue 1")
    assert result.code == 0, result.stderr
    final = record(w)
    numbers = [a.experiment for a in final.attempts]
    assert numbers == sorted(set(numbers)) and len(numbers) >= len(killed.attempts) + 1
    kept = [a.sha for a in final.attempts if a.status == "keep"]
    branch = w.lab.git("rev-parse", "autoresearch/demo")
    for sha in kept:
        w.lab.git("merge-base", "--is-ancestor", str(sha), branch)
    assert RecordStore(w.lab.repo, "demo").head() == w.lab.git("rev-parse", "refs/autoresearch/demo/record")
    assert all(shows(w.pr_body(), n) for n in numbers)
