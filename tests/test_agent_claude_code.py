"""The claude-code agent: the real Claude Code CLI against a loopback Messages API, in a real loop."""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from arl_bot import pricing
from arl_bot.agents import AgentResult, AgentTask, get_agent
from arl_bot.agents.api_meter import Ledger, MeteringProxy
from arl_bot.agents.claude_code import ClaudeCodeAgent
from arl_bot.errors import ArlError
from arl_bot.loop import RunOptions, Session
from arl_bot.pricing import UnknownModelError
from arl_bot.sandbox import Sandbox, get_sandbox

from tests.labs import Lab, make_lab, value_config
from tests.messages_api import MessagesAPI, Turn, text, tool_use, usage

pytestmark = pytest.mark.external

ROOT = Path(__file__).resolve().parents[1]
INSTALLED = ROOT / ".ci/node/node_modules/.bin/claude"  # .ci/run installs it


@pytest.fixture(scope="module")
def claude() -> str:
    found = INSTALLED if INSTALLED.exists() else shutil.which("claude")
    if not found:
        pytest.fail("the Claude Code CLI is not installed: run .ci/run, or "
                    "npm install --prefix .ci/node @anthropic-ai/claude-code@2.1.197")
    return str(found)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[MessagesAPI]:
    with MessagesAPI() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-cli-test")
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_must_not_leak")
        yield server


def lab_for(tmp_path: Path, claude: str, budget: str = "{experiments: 1}", extra: str = "") -> Lab:
    agent = f"{{kind: claude-code, command: {claude}, model: claude-sonnet-4-6, timeout: 60{extra}}}"
    return make_lab(tmp_path, ["1"], config_text=value_config(agent=agent, budget=budget))


def session(lab: Lab) -> tuple[Session, str]:
    """A loop on the lab, and the absolute path of model/value.txt in its worktree (Claude Code's tools want one)."""
    # In bubblewrap, as in production: the CLI skips its own permission checks (IS_SANDBOX=1, as root).
    loop = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True),
                   sandbox=get_sandbox("bubblewrap"))
    return loop, str((loop.worktree_path / "model/value.txt").resolve())


def propose(lab: Lab, sandbox: Sandbox, timeout: float = 60) -> AgentResult:
    agent = get_agent(lab.loop(), sandbox)
    workdir = lab.root.parent / "work"
    workdir.mkdir(exist_ok=True)
    prompt = workdir / "prompt.md"
    prompt.write_text("Lower the score.\n")
    return agent.propose(AgentTask(tree=lab.root, prompt=prompt.read_text(), prompt_file=prompt, experiment=1,
                                   mode="improve", parent="HEAD", timeout=timeout))


def test_a_scripted_session_edits_the_pipeline_and_its_cost_is_read(
        tmp_path: Path, api: MessagesAPI, claude: str) -> None:
    lab = lab_for(tmp_path, claude)
    loop, path = session(lab)
    api.push(tool_use("Read", {"file_path": path}, usage=usage(1000, 50)),
             tool_use("Edit", {"file_path": path, "old_string": "10", "new_string": "7"}, usage=usage(1200, 60)),
             text("Lowered the value.\nSUMMARY: lower value.txt to 7", usage=usage(1300, 30, cache_read=2000)))
    summary = loop.run()
    attempt = summary.record.attempts[-1]
    assert attempt.status == "keep" and attempt.metric == 7.0, (attempt.reason, attempt.agent_log)
    assert attempt.description == "lower value.txt to 7"
    # total_cost_usd as Claude Code reports it: 3,500 x $3 + 140 x $15 + 2,000 x $0.30 per million
    assert attempt.cost_usd == pytest.approx(0.0132, abs=1e-12)
    assert (attempt.tokens_in, attempt.tokens_out) == (5500, 140)
    first = api.conversation[0]
    assert "Lower the score." in str(first.body["messages"])  # the rendered prompt, sent on stdin
    assert "SUMMARY:" in str(first.body["system"])
    assert "sk-ant-cli-test" in (first.headers.get("x-api-key") or first.headers.get("authorization", ""))
    assert "Edit" in attempt.agent_log and "over 3 API calls, metered by arl-bot" in attempt.agent_log
    assert lab.repo.run("show", "autoresearch/demo:model/value.txt") == "7"


def test_the_key_stays_with_the_meter_and_the_github_token_goes_nowhere(tmp_path: Path, api: MessagesAPI,
                                                                          claude: str) -> None:
    lab = lab_for(tmp_path, claude, extra=", args: [--max-budget-usd, '5']")
    agent = get_agent(lab.loop(), get_sandbox("none"))
    assert isinstance(agent, ClaudeCodeAgent)
    argv = agent.argv()
    assert "sk-ant-cli-test" not in " ".join(argv) and argv[-2:] == ["--max-budget-usd", "5"]
    assert "--dangerously-skip-permissions" not in argv and "acceptEdits" in argv
    assert argv[argv.index("--tools") + 1] == "Read,Edit,Write,Glob,Grep"  # outside a sandbox: file tools only
    task = AgentTask(tree=lab.root, prompt="", prompt_file=tmp_path / "p", experiment=1, mode="improve",
                     parent="HEAD", timeout=1, env={"GH_TOKEN": "leak"})
    with MeteringProxy(Ledger(limit=None), upstream=api.url, api_key="sk-ant-cli-test") as proxy:
        env = agent.environment(task, proxy)
        assert proxy.placeholder and env["ANTHROPIC_API_KEY"] == proxy.placeholder
        assert env["ANTHROPIC_BASE_URL"] == proxy.url and "IS_SANDBOX" not in env
        assert "sk-ant-cli-test" not in str(env) and "GITHUB_TOKEN" not in env and "GH_TOKEN" not in env

        class Isolated(type(get_sandbox("none"))):  # type: ignore[misc]
            isolated = True

        inside = get_agent(lab.loop(), Isolated())
        assert isinstance(inside, ClaudeCodeAgent)
        assert inside.environment(task, proxy)["IS_SANDBOX"] == "1"
    assert "--dangerously-skip-permissions" in inside.argv() and "--tools" not in inside.argv()


def test_the_models_commands_see_neither_the_key_nor_a_way_around_the_meter(
        tmp_path: Path, api: MessagesAPI, claude: str) -> None:
    # In bubblewrap, sharing the host's network as the agent phase does: the meter on 127.0.0.1 is reachable
    # (the CLI's own calls prove it), and what the model runs there finds only the placeholder, and a meter
    # that forwards nothing but the CLI's Messages calls.
    probe = ("import os, urllib.request as u\n"
             "base = os.environ['ANTHROPIC_BASE_URL']\n"
             "print('KEY', os.environ.get('ANTHROPIC_API_KEY'))\n"
             "for method, path, key in (('GET', '/v1/models', 1), ('POST', '/v1/complete', 1),\n"
             "                          ('POST', '/v1/messages', 0)):\n"
             "    headers = {'x-api-key': os.environ['ANTHROPIC_API_KEY']} if key else {}\n"
             "    try:\n"
             "        u.urlopen(u.Request(base + path, data=b'{}' if method == 'POST' else None, method=method,\n"
             "                            headers=headers))\n"
             "    except Exception as exc:\n"
             "        print(method, path, getattr(exc, 'code', exc))\n")
    lab = lab_for(tmp_path, claude)
    loop, _ = session(lab)
    command = f"python3 -c \"import base64; exec(base64.b64decode('{base64.b64encode(probe.encode()).decode()}'))\""
    api.push(tool_use("Bash", {"command": command}, usage=usage(1000, 50)),
             text("SUMMARY: looked around", usage=usage(1100, 20)))
    attempt = loop.run().record.attempts[-1]
    seen = str(api.conversation[1].last_user_content)
    assert "KEY arl-bot-meter-" in seen, (seen, attempt.agent_log)
    assert "sk-ant-cli-test" not in seen
    assert "GET /v1/models 404" in seen and "POST /v1/complete 404" in seen and "POST /v1/messages 401" in seen
    assert {r.headers.get("x-api-key") for r in api.requests} == {"sk-ant-cli-test"}
    assert {r.path for r in api.requests} == {"/v1/messages?beta=true"}


def test_without_a_sandbox_it_edits_the_worktree_with_its_own_permission_checks(
        tmp_path: Path, api: MessagesAPI, claude: str) -> None:
    lab = lab_for(tmp_path, claude)
    loop = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True), sandbox=get_sandbox("none"))
    path = str((loop.worktree_path / "model/value.txt").resolve())
    api.push(tool_use("Read", {"file_path": path}, usage=usage(1000, 50)),
             tool_use("Edit", {"file_path": path, "old_string": "10", "new_string": "6"}, usage=usage(1200, 60)),
             text("SUMMARY: lower value.txt to 6", usage=usage(1300, 30)))
    attempt = loop.run().record.attempts[-1]
    assert attempt.status == "keep" and attempt.metric == 6.0, (attempt.reason, attempt.agent_log)


def billed(api: MessagesAPI) -> Decimal:
    """What the stand-in's replies cost, as far as they went out: what the API would bill."""
    return sum((pricing.PRICES["claude-sonnet-4-6"].cost(pricing.Usage.from_api(sent)) for sent in api.sent_usage),
               Decimal(0))


def test_fast_replies_cannot_overshoot_the_cap_and_every_call_is_recorded(
        tmp_path: Path, api: MessagesAPI, claude: str) -> None:
    lab = lab_for(tmp_path, claude, budget="{experiments: 3, cost_usd: 1}")
    loop, path = session(lab)
    # Replies as fast as the stand-in gives them, $0.27 each: the CLI would make several between two reads
    # of its output. Each request (~117 kB, max_tokens 32,000) could cost up to ~$0.63, so the meter lets a
    # third start only if $0.54 + $0.63 fits in $1: it does not, and the CLI is stopped.
    api.push(*[tool_use("Read", {"file_path": path}, usage=usage(40_000, 10_000)) for _ in range(12)])
    summary = loop.run()
    crashed = summary.record.attempts[-1]
    assert len(api.conversation) == 2 and len(api.sent_usage) == 2
    assert billed(api) == Decimal("0.54") <= Decimal(1)  # the cap held: no call started it could not pay for
    assert crashed.cost_usd == pytest.approx(0.54, abs=1e-12)  # every call the stand-in answered, recorded
    assert crashed.status == "crash"
    assert crashed.reason.startswith("cost cap: $0.5400 spent of $1.0000; the next call could cost up to $0.6"), \
        crashed.reason
    assert crashed.reason.endswith("; Claude Code was stopped")
    assert (crashed.tokens_in, crashed.tokens_out) == (80_000, 20_000)
    # $0.54 spent, and the next experiment could cost as much again: the run stops.
    assert summary.reason == "cost: $0.5400 of $1.00 spent; the next experiment could cost $0.5400 (the dearest so far)"


def test_a_reply_that_outgrows_its_worst_case_is_cut_off_as_it_streams(
        tmp_path: Path, api: MessagesAPI, claude: str) -> None:
    lab = lab_for(tmp_path, claude, budget="{experiments: 3, cost_usd: 1}")
    loop, path = session(lab)
    # Call 2 claims 400,000 prompt tokens ($1.20), far more than its request could hold (an estimate can
    # only fall short if the API counts a prompt very differently): its message_start alone crosses $1,
    # its reply (the Edit) stalls, and the CLI is stopped before it can run it.
    api.push(tool_use("Read", {"file_path": path}, usage=usage(1000, 50)),
             tool_use("Edit", {"file_path": path, "old_string": "10", "new_string": "1"}, usage=usage(400_000, 60),
                      stall_s=20))
    summary = loop.run()
    crashed = summary.record.attempts[-1]
    assert crashed.status == "crash" and crashed.reason.startswith("cost cap: $1.2038 spent of $1.0000")
    assert Decimal(str(crashed.cost_usd)) == billed(api) == Decimal("0.00375") + Decimal("1.200015")
    assert Path(path).read_text() == "10\n"
    assert summary.reason == "cost: $1.20 of $1.00 spent"
    assert len(api.conversation) == 2


def test_the_timeout_kills_the_cli(tmp_path: Path, api: MessagesAPI, claude: str) -> None:
    lab = lab_for(tmp_path, claude)
    api.push(Turn(content=[{"type": "text", "text": "slow"}], delay_s=30))
    started = time.monotonic()
    result = propose(lab, get_sandbox("none"), timeout=4)
    assert result.error == "agent timed out after 4s"
    assert time.monotonic() - started < 12


def test_an_unknown_model_is_refused_before_the_cli_starts(tmp_path: Path, api: MessagesAPI, claude: str) -> None:
    lab = make_lab(tmp_path, ["1"], config_text=value_config(
        agent=f"{{kind: claude-code, command: {claude}, model: claude-opus-9}}"))
    with pytest.raises(UnknownModelError):
        propose(lab, get_sandbox("none"))
    assert api.requests == []


def test_no_credentials_is_an_error_that_says_what_to_set(tmp_path: Path, api: MessagesAPI, claude: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ArlError, match="CLAUDE_CODE_OAUTH_TOKEN"):
        propose(lab_for(tmp_path, claude), get_sandbox("none"))
