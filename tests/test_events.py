"""One Event for every entry point, parsed from recorded webhook payloads and the runner's environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from arl_bot.events import Event, EventError, from_env, parse

from tests.webhooks import payload

pytestmark = pytest.mark.unit

ENV = {"GITHUB_REPOSITORY": "Codertocat/Hello-World", "GITHUB_RUN_ID": "7", "GITHUB_SERVER_URL": "https://ghe.example",
       "GITHUB_API_URL": "https://ghe.example/api/v3/"}


def test_a_comment_on_a_pull_request() -> None:
    event = parse("issue_comment", payload("issue_comment.created.pull_request"), ENV)
    assert (event.kind, event.action, event.number, event.on_pull) == ("comment", "created", 1, True)
    assert event.comment_id == 492700400 and event.author == "Codertocat" and not event.from_bot
    assert event.comment_body.startswith("You are totally right!")
    assert event.api_url == "https://ghe.example/api/v3"
    assert event.run_url == "https://ghe.example/Codertocat/Hello-World/actions/runs/7"


def test_a_comment_on_an_issue_and_an_edit() -> None:
    assert not parse("issue_comment", payload("issue_comment.created.issue"), ENV).on_pull
    assert parse("issue_comment", payload("issue_comment.edited.pull_request"), ENV).action == "edited"


def test_a_bot_is_known_by_its_type_or_its_name() -> None:
    data = payload("issue_comment.created.pull_request")
    data["comment"]["user"].update(login="dependabot[bot]", type="Bot")
    assert parse("issue_comment", data, ENV).from_bot
    data["comment"]["user"].update(login="someone[bot]", type="User")
    assert parse("issue_comment", data, ENV).from_bot


def test_dispatch_inputs_are_validated() -> None:
    data = payload("workflow_dispatch")
    data["inputs"] = {"loop": "charlm", "experiments": "3"}
    event = parse("workflow_dispatch", data, ENV)
    assert (event.kind, event.loop, event.experiments) == ("dispatch", "charlm", 3)
    data["inputs"] = {"loop": "x; rm -rf /", "experiments": ""}
    with pytest.raises(EventError, match="not a loop name"):
        parse("workflow_dispatch", data, ENV)
    data["inputs"] = {"loop": "", "experiments": "1e9"}
    with pytest.raises(EventError, match="not a number of experiments"):
        parse("workflow_dispatch", data, ENV)


def test_schedule_and_the_cli_and_anything_else(tmp_path: Path) -> None:
    assert parse("schedule", {"schedule": "17 */6 * * *"}, {**ENV, "ARL_EXPERIMENTS": "2"}).experiments == 2
    assert parse("push", {}, ENV).kind == "other"
    assert from_env({"ARL_LOOP": "demo"}) == Event(kind="cli", name="cli", loop="demo")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload("issue_comment.created.pull_request")))
    assert from_env({**ENV, "GITHUB_EVENT_NAME": "issue_comment", "GITHUB_EVENT_PATH": str(path)}).on_pull
    path.write_text("{not json")
    with pytest.raises(EventError, match="cannot read the event payload"):
        from_env({**ENV, "GITHUB_EVENT_NAME": "issue_comment", "GITHUB_EVENT_PATH": str(path)})


def test_a_re_run_of_a_job_is_another_run_in_the_record_and_links_to_its_own_attempt() -> None:
    first = parse("schedule", {}, {**ENV, "GITHUB_RUN_ID": "77", "GITHUB_RUN_ATTEMPT": "1"})
    again = parse("schedule", {}, {**ENV, "GITHUB_RUN_ID": "77", "GITHUB_RUN_ATTEMPT": "2"})
    assert (first.job_run_id, again.job_run_id) == ("77", "77-2")
    assert first.run_url.endswith("/actions/runs/77")
    assert again.run_url.endswith("/actions/runs/77/attempts/2")
