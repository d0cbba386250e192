"""The research pull request on GitHub's real terms: a token that may not open it, a repository without drafts."""

from __future__ import annotations

from pathlib import Path

from tests.action_world import world
from tests.labs import value_config

SETTING = 'Settings → Actions → General → Workflow permissions → "Allow GitHub Actions to create and approve'


def test_a_token_that_may_not_open_pull_requests_fails_before_the_baseline_naming_the_setting(
        tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.github.actions_may_open_pulls = False  # the default of a new repository in a personal account
        result = w.dispatch(experiments=3)
        assert result.code != 0
        assert "GitHub Actions is not permitted to create or approve pull requests" in result.stdout
        assert SETTING in result.stdout and "no experiment was run" in result.stdout
        record = w.record()
        assert record is None or record.attempts == []  # not even the baseline was measured
        assert w.github.pulls() == []
        # The branch is on GitHub (so the PR has a head) and the next run, once the setting is on, opens it.
        assert w.remote_log() == ["autoresearch: start loop demo", "lab"]
        w.github.actions_may_open_pulls = True
        again = w.dispatch(experiments=1)
        assert again.code == 0, again.stdout + again.stderr
        assert [p["number"] for p in w.github.pulls()] == [1] and w.github.pull(1)["draft"]


def test_the_pull_request_is_open_before_the_first_experiment_runs(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        result = w.dispatch(experiments=1)
        assert result.code == 0, result.stderr
        opened = [e for e in w.github.requests if e.method == "POST" and e.operation.endswith("/pulls")]
        assert len(opened) == 1 and "Starting: the baseline is being measured" in opened[0].request["body"]
        assert "1 tried, 1 kept" in w.pr_body()  # the starting body was rebuilt from the record


def test_a_repository_without_draft_pull_requests_gets_a_normal_one_that_says_why(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.github.drafts_supported = False  # a private repository on GitHub Free or Pro
        result = w.dispatch(experiments=1)
        assert result.code == 0, result.stdout + result.stderr
        pull = w.github.pull(1)
        assert not pull["draft"] and "Opened as a normal pull request, not a draft" in pull["body"]
        refused = [e for e in w.github.requests if e.operation.endswith("/pulls") and e.status == 422]
        assert len(refused) == 1 and refused[0].request["draft"] is True
        more, _ = w.comment(1, "/autoresearch continue 1")
        assert more.code == 0, more.stderr
        body = w.pr_body()
        assert "2 tried" in body and "Opened as a normal pull request" in body  # every rebuild keeps saying why
        assert len(w.github.pulls()) == 1


def test_github_draft_false_opens_a_normal_pull_request_without_trying_a_draft(tmp_path: Path) -> None:
    config = value_config(extra="") + "github:\n  draft: false\n"
    with world(tmp_path, config_text=config) as w:
        w.github.drafts_supported = False
        result = w.dispatch(experiments=1)
        assert result.code == 0, result.stdout + result.stderr
        assert not w.github.pull(1)["draft"]
        assert all(e.status != 422 for e in w.github.requests)
        assert "Opened as a normal pull request" not in w.pr_body()
