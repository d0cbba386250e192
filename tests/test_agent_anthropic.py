"""The anthropic agent: the real SDK against a loopback Messages API, in a real loop on a real repository."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from arl_bot.agents import AgentTask, get_agent
from arl_bot.agents.anthropic import AnthropicAgent
from arl_bot.errors import ArlError
from arl_bot.loop import RunOptions, Session
from arl_bot.pricing import UnknownModelError
from arl_bot.sandbox import get_sandbox

from tests.labs import Lab, make_lab, value_config
from tests.messages_api import Failure, MessagesAPI, Request, Turn, text, tool_use, usage

AGENT = "{kind: anthropic, model: claude-sonnet-4-6, timeout: 30}"
CALL = usage(1000, 100)  # $0.0045 on sonnet: 1000 x $3 + 100 x $15 per million


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[MessagesAPI]:
    with MessagesAPI() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
        yield server


def lab_for(tmp_path: Path, agent: str = AGENT, budget: str = "{experiments: 1}") -> Lab:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_lab(tmp_path, ["1"], config_text=value_config(agent=agent, budget=budget))


def propose(lab: Lab, timeout: float = 30, cost_limit: float | None = None) -> tuple[AnthropicAgent, object]:
    loop = lab.loop()
    agent = get_agent(loop, get_sandbox("none"))
    assert isinstance(agent, AnthropicAgent)
    workdir = lab.root.parent / "work"
    workdir.mkdir(exist_ok=True)
    prompt = workdir / "prompt.md"
    prompt.write_text("Lower the score in model/value.txt.\n")
    result = agent.propose(AgentTask(
        tree=lab.root, prompt=prompt.read_text(), prompt_file=prompt, experiment=1, mode="improve",
        parent="HEAD", timeout=timeout, cost_limit_usd=cost_limit,
    ))
    return agent, result


def key_sent(request: Request) -> str:
    """The key a request carried (x-api-key, or a bearer token as anthropic>=2 sends it)."""
    return request.headers.get("x-api-key") or request.headers.get("authorization", "")


def results_sent(api: MessagesAPI) -> list[dict[str, object]]:
    """Every tool_result the agent sent back, in order."""
    return [block for request in api.conversation for block in request.last_user_content
            if block.get("type") == "tool_result"]


def test_edits_land_and_the_summary_is_the_description(tmp_path: Path, api: MessagesAPI) -> None:
    lab = lab_for(tmp_path)
    api.push(tool_use("list_files", {}), tool_use("read_file", {"path": "model/value.txt"}),
             tool_use("edit_file", {"path": "model/value.txt", "old_string": "10", "new_string": "7"}),
             text("I lowered the value.\nSUMMARY: lower value.txt from 10 to 7"))
    _, result = propose(lab)
    assert (lab.root / "model/value.txt").read_text() == "7\n"
    assert result.ok and result.description == "lower value.txt from 10 to 7"  # type: ignore[attr-defined]
    listing, read, edit = (r["content"] for r in results_sent(api))
    assert "model/value.txt [editable]" in str(listing) and "eval/run.py\n" in f"{listing}\n"
    assert read == "10\n" and edit == "edited model/value.txt (1 replacement)"
    first = api.conversation[0]
    assert "sk-ant-test-key" in key_sent(first) and first.body["stream"] is True
    assert first.body["model"] == "claude-sonnet-4-6"
    assert first.body["system"][-1]["cache_control"] == {"type": "ephemeral"}  # the stable part is cached
    assert "Lower the score" in first.body["system"][-1]["text"]
    assert {t["name"] for t in first.body["tools"]} == {"list_files", "read_file", "write_file", "edit_file"}


def test_out_of_bounds_writes_are_refused_and_reported(tmp_path: Path, api: MessagesAPI) -> None:
    lab = lab_for(tmp_path)
    (lab.root / "model/link.txt").symlink_to("../eval/run.py")
    evaluation = (lab.root / "eval/run.py").read_text()
    api.push(tool_use("write_file", {"path": "eval/run.py", "content": "print('score: 0')"}),
             tool_use("write_file", {"path": "AGENT.md", "content": "x"}),
             tool_use("write_file", {"path": "model/../../escape.txt", "content": "x"}),
             tool_use("write_file", {"path": "/tmp/escape.txt", "content": "x"}),
             tool_use("edit_file", {"path": "model/link.txt", "old_string": "score", "new_string": "x"}),
             tool_use("read_file", {"path": ".git/config"}),
             text("SUMMARY: tried to cheat"))
    _, result = propose(lab)
    refusals = results_sent(api)
    assert [r.get("is_error") for r in refusals] == [True] * 6
    messages = [str(r["content"]) for r in refusals]
    assert "eval/run.py is protected" in messages[0]
    assert "AGENT.md is not editable" in messages[1] and "model/**" in messages[1]
    assert "'..'" in messages[2] and "outside the repository" in messages[3]
    assert "symbolic link" in messages[4] and "off limits" in messages[5]
    assert (lab.root / "eval/run.py").read_text() == evaluation
    assert not (tmp_path / "escape.txt").exists() and not Path("/tmp/escape.txt").exists()
    assert "ERROR refused: eval/run.py is protected" in result.log  # type: ignore[attr-defined]


def test_usage_adds_up_to_the_recorded_cost(tmp_path: Path, api: MessagesAPI) -> None:
    lab = lab_for(tmp_path)
    api.push(tool_use("write_file", {"path": "model/value.txt", "content": "4\n"},
                      usage=usage(200, 50, cache_write=3000)),
             text("SUMMARY: set 4", usage=usage(300, 40, cache_read=3000, cache_write=250)))
    summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, dry_run=True)).run()
    attempt = summary.record.attempts[-1]
    assert attempt.status == "keep" and attempt.description == "set 4"
    # 200x$3 + 50x$15 + 3000x$3.75, then 300x$3 + 40x$15 + 3000x$0.30 + 250x$3.75, per million tokens
    assert attempt.cost_usd == 0.0159375
    assert (attempt.tokens_in, attempt.tokens_out) == (200 + 3000 + 300 + 3000 + 250, 90)
    assert summary.record.total_cost == 0.0159375


def test_overloads_and_rate_limits_are_retried(tmp_path: Path, api: MessagesAPI) -> None:
    lab = lab_for(tmp_path)
    api.push(Failure(529), Failure(429, "rate_limit_error", "slow down"),
             tool_use("write_file", {"path": "model/value.txt", "content": "3\n"}),
             Failure(529, mid_stream=True),  # the 200 has gone out; the overload arrives in the stream
             text("SUMMARY: set 3"))
    _, result = propose(lab)
    assert result.ok, result.log  # type: ignore[attr-defined]
    assert (lab.root / "model/value.txt").read_text() == "3\n"
    assert [r.served for r in api.messages_requests] == ["script"] * 5
    assert result.cost_usd == pytest.approx(2 * 0.0006)  # failed calls cost nothing  # type: ignore[attr-defined]


def test_the_cap_stops_the_agent_and_then_the_loop(tmp_path: Path, api: MessagesAPI) -> None:
    # Each experiment is two calls of $0.0045. With $0.015, experiment 1 costs $0.009 and the loop does not
    # start experiment 2 ($0.009 + $0.009 > $0.015): spending never passes the cap.
    lab = lab_for(tmp_path, budget="{experiments: 5, cost_usd: 0.015}")
    for value in ("8", "6", "4"):
        api.push(tool_use("write_file", {"path": "model/value.txt", "content": value}, usage=CALL),
                 text(f"SUMMARY: set {value}", usage=CALL))
    summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True)).run()
    assert [a.status for a in summary.record.attempts] == ["baseline", "keep"]
    assert summary.reason.startswith("cost: $0.0090 of $0.0150 spent; the next experiment could cost $0.0090")
    assert summary.record.total_cost == pytest.approx(0.009) and len(api.conversation) == 2

    # With $0.006 the agent itself stops after its first call: a second could cross the cap.
    second = lab_for(tmp_path / "second", budget="{experiments: 5, cost_usd: 0.006}")
    api.script.clear()
    api.push(tool_use("write_file", {"path": "model/value.txt", "content": "8"}, usage=CALL),
             text("SUMMARY: never sent", usage=CALL))
    summary = Session(second.repo, second.config(), second.loop(), RunOptions(dry_run=True)).run()
    crashed = summary.record.attempts[-1]
    assert crashed.status == "crash" and crashed.reason.startswith("cost cap: $0.0045 spent of $0.0060")
    assert crashed.extra.get("cost_capped") is True  # the loop stops on it, whatever the dearest experiment cost
    assert crashed.cost_usd == pytest.approx(0.0045) and summary.record.total_cost <= 0.006
    assert len(api.conversation) == 3  # 2 from the first lab, 1 here
    assert summary.reason.startswith("cost: $0.0045 of $0.0060 spent")


def test_the_timeout_stops_a_slow_model(tmp_path: Path, api: MessagesAPI) -> None:
    lab = lab_for(tmp_path)
    api.push(Turn(content=[{"type": "text", "text": "thinking..."}], stall_s=5))
    started = time.monotonic()
    _, result = propose(lab, timeout=1)
    assert result.error == "agent timed out after 1s"  # type: ignore[attr-defined]
    assert time.monotonic() - started < 4
    assert result.cost_usd == pytest.approx((100 * 3 + 1 * 15) / 1e6)  # the cut-off reply's prompt is paid for


def test_an_unknown_model_needs_an_explicit_price(tmp_path: Path, api: MessagesAPI) -> None:
    with pytest.raises(UnknownModelError, match="claude-opus-9"):
        propose(lab_for(tmp_path, agent="{kind: anthropic, model: claude-opus-9}"))
    assert api.requests == []  # refused before any money was spent
    api.push(text("SUMMARY: nothing", usage=usage(1000, 1000)))
    _, result = propose(lab_for(tmp_path / "priced",
                                agent="{kind: anthropic, model: claude-opus-9, price: {input: 2, output: 10}}"))
    assert result.cost_usd == pytest.approx(0.012)  # type: ignore[attr-defined]


def test_a_missing_key_or_a_refused_key_stops_the_run(tmp_path: Path, api: MessagesAPI,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ArlError, match=r"\$ANTHROPIC_API_KEY"):
        propose(lab_for(tmp_path))
    monkeypatch.setenv("MY_KEY", "sk-other")
    api.push(Failure(401, "authentication_error", "invalid x-api-key"))
    with pytest.raises(ArlError, match="invalid x-api-key"):
        propose(lab_for(tmp_path / "two", agent="{kind: anthropic, api_key_env: MY_KEY}"))
    assert "sk-other" in key_sent(api.requests[-1])


def test_the_stand_in_answers_the_sdk_without_streaming(api: MessagesAPI) -> None:
    import anthropic  # here, not at the top: the SDK costs seconds to import, and only this test uses it

    api.push(tool_use("read_file", {"path": "a.txt"}, say="Let me look.", usage=usage(12, 3, cache_read=5)))
    client = anthropic.Anthropic(base_url=api.url, api_key="k", max_retries=0)
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=100,
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.stop_reason == "tool_use" and message.content[0].type == "text"
    assert message.content[1].type == "tool_use" and message.content[1].input == {"path": "a.txt"}
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (12, 5)


def test_a_dry_run_says_the_api_calls_were_real_and_what_they_cost(
        tmp_path: Path, api: MessagesAPI, capsys: pytest.CaptureFixture[str]) -> None:
    from arl_bot.cli import main

    lab = lab_for(tmp_path)
    api.push(tool_use("write_file", {"path": "model/value.txt", "content": "4\n"}, usage=CALL),
             text("SUMMARY: set 4", usage=CALL))
    assert main(["run", "--repo", str(lab.root), "--dry-run"]) == 0
    assert len(api.conversation) == 2  # a dry run still calls the Messages API
    assert "the agent's API calls were real: $0.0090 spent (2000 tokens in, 200 out)" in capsys.readouterr().err
