"""Comments that must not run anything: each gets the right answer (or, from bots, none) and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.action_world import World, world


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world with an open research PR (#1); every test comments on it or on other threads."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp, world(tmp_path_factory.mktemp("refusals")) as made:
        mp.setenv("HOME", str(home))  # the per-test identity fixture has not run yet at module scope
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        assert made.dispatch(experiments=1).code == 0
        yield made


def nothing_ran(w: World, result_outputs: dict[str, str], log_before: list[str]) -> None:
    assert result_outputs.get("run", "false") == "false"
    assert "baseline" not in result_outputs
    assert w.remote_log() == log_before


def test_a_readers_command_is_refused_with_a_reply(w: World) -> None:
    before = w.remote_log()
    result, comment_id = w.comment(1, "/autoresearch continue 3", login="rita")
    assert result.code == 0
    nothing_ran(w, result.outputs, before)
    reply = w.github.replies(1)[-1]
    assert "@rita has the `read` role" in reply and "/autoresearch continue 3" in reply
    assert w.github.reactions(comment_id) == ["eyes"]


def test_a_bots_comment_is_ignored_without_a_word(w: World) -> None:
    before, replies, requests = w.remote_log(), len(w.github.replies(1)), len(w.github.requests)
    bot = w.github.add_user("renovate[bot]", role="write", kind="Bot")
    result, comment_id = w.comment(1, "/autoresearch continue 3", login="renovate[bot]", user=bot)
    assert result.code == 0
    nothing_ran(w, result.outputs, before)
    assert len(w.github.replies(1)) == replies and w.github.reactions(comment_id) == []
    assert len(w.github.requests) == requests  # not even a permission check


def test_the_bots_own_reply_is_never_a_command(w: World) -> None:
    before, replies = w.remote_log(), len(w.github.replies(1))
    # A personal token makes the bot's replies look like the person's; the marker still gives them away.
    result, _ = w.comment(1, "<!-- arl-bot:reply -->\n/autoresearch continue 3", login="alice")
    nothing_ran(w, result.outputs, before)
    assert len(w.github.replies(1)) == replies


def test_an_edited_comment_is_not_run(w: World) -> None:
    before = w.remote_log()
    result, comment_id = w.comment(1, "/autoresearch continue 3", fixture="issue_comment.edited.pull_request")
    assert result.code == 0
    nothing_ran(w, result.outputs, before)
    assert "edited comments are not run" in w.github.replies(1)[-1]
    assert w.github.reactions(comment_id) == []


def test_a_command_on_an_issue_is_refused(w: World) -> None:
    before = w.remote_log()
    issue = w.github.add_issue("a bug")
    result, _ = w.comment(issue, "/autoresearch continue 3", fixture="issue_comment.created.issue")
    assert result.code == 0
    nothing_ran(w, result.outputs, before)
    assert "research pull requests only" in w.github.replies(issue)[-1]


def test_a_command_on_a_fork_pr_is_refused(w: World) -> None:
    before = w.remote_log()
    fork = w.github.add_pull("autoresearch/demo", fork="mallory/Hello-World", author=None)
    result, _ = w.comment(fork, "/autoresearch continue 3")
    assert result.code == 0
    nothing_ran(w, result.outputs, before)
    assert "lives in a fork" in w.github.replies(fork)[-1]


def test_a_command_on_a_pr_that_is_not_research_is_refused(w: World) -> None:
    before = w.remote_log()
    other = w.github.add_pull("feature/faster-loader", title="Faster loader")
    result, _ = w.comment(other, "/autoresearch continue 3")
    nothing_ran(w, result.outputs, before)
    assert "not a research pull request" in w.github.replies(other)[-1]


def test_an_unknown_verb_gets_help(w: World) -> None:
    before = w.remote_log()
    result, comment_id = w.comment(1, "/autoresearch deploy now")
    nothing_ran(w, result.outputs, before)
    reply = w.github.replies(1)[-1]
    assert "unknown command `deploy`" in reply and "/autoresearch continue [N]" in reply
    assert "/autoresearch deploy now" in reply
    assert w.github.reactions(comment_id) == ["eyes"]


def test_shell_metacharacters_reach_no_shell_and_no_output(w: World, tmp_path: Path) -> None:
    before = w.remote_log()
    canary = tmp_path / "pwned"
    body = f"/autoresearch continue 3; touch {canary} $(touch {canary}) `touch {canary}` | sh"
    result, _ = w.comment(1, body)
    nothing_ran(w, result.outputs, before)
    assert not canary.exists()
    reply = w.github.replies(1)[-1]
    assert "at most one number" in reply and f"```text\n{body}\n```" in reply
    assert all("touch" not in value for value in result.outputs.values())


def test_a_redirect_full_of_metacharacters_is_only_data(w: World, tmp_path: Path) -> None:
    canary = tmp_path / "pwned2"
    result, _ = w.comment(1, f"/autoresearch redirect $(touch {canary}) && `touch {canary}`")
    assert result.code == 0 and not canary.exists()
    assert all("touch" not in value for value in result.outputs.values())


def test_a_stranger_gets_one_refusal_per_pull_request_however_often_they_ask(w: World) -> None:
    w.github.add_user("spammer", role="none")
    before, replies = w.remote_log(), len(w.github.replies(1))
    for _ in range(3):
        result, comment_id = w.comment(1, "/autoresearch continue 100", login="spammer")
        assert result.code == 0
        nothing_ran(w, result.outputs, before)
        assert w.github.reactions(comment_id) == ["eyes"]  # read, each time
    refusals = w.github.replies(1)[replies:]
    assert len(refusals) == 1 and "@spammer has the `none` role" in refusals[0]
    # Another stranger, and the same one on another pull request, still get their one answer.
    w.github.add_user("other", role="none")
    w.comment(1, "/autoresearch stop", login="other")
    other_pr = w.github.add_pull("autoresearch/demo2", title="demo2")
    w.comment(other_pr, "/autoresearch stop", login="spammer")
    assert len(w.github.replies(1)) == replies + 2 and len(w.github.replies(other_pr)) == 1


def test_a_forged_refusal_marker_from_a_person_does_not_silence_the_bot(w: World) -> None:
    w.github.add_user("sneaky", role="none")
    replies = len(w.github.replies(1))
    w.comment(1, "<!-- arl-bot:refused sneaky2 -->", login="sneaky")
    w.github.add_user("sneaky2", role="none")
    w.comment(1, "/autoresearch continue", login="sneaky2")
    assert len(w.github.replies(1)) == replies + 1
