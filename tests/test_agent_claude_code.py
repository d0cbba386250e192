"""The claude-code agent: the real Claude Code CLI against a loopback Messages API, in a real loop."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from arl_bot.agents import AgentResult, AgentTask, get_agent
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
    assert "Edit" in attempt.agent_log and "reported by claude" in attempt.agent_log
    assert lab.repo.run("show", "autoresearch/demo:model/value.txt") == "7"


def test_the_key_goes_by_environment_and_the_github_token_not_at_all(tmp_path: Path, api: MessagesAPI,
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
    env = agent.environment(task)
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-cli-test" and "IS_SANDBOX" not in env
    assert "GITHUB_TOKEN" not in env and "GH_TOKEN" not in env

    class Isolated(type(get_sandbox("none"))):  # type: ignore[misc]
        isolated = True

    inside = get_agent(lab.loop(), Isolated())
    assert isinstance(inside, ClaudeCodeAgent)
    assert inside.environment(task)["IS_SANDBOX"] == "1"
    assert "--dangerously-skip-permissions" in inside.argv() and "--tools" not in inside.argv()


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


def test_the_cap_kills_the_cli_mid_call_and_stops_the_loop(tmp_path: Path, api: MessagesAPI, claude: str) -> None:
    lab = lab_for(tmp_path, claude, budget="{experiments: 3, cost_usd: 0.005}")
    loop, path = session(lab)
    # Call 1 costs $0.00375. Call 2's prompt alone ($0.0036) crosses $0.005 as soon as its stream starts;
    # its reply (the Edit) stalls, and the CLI is killed before it can run it.
    api.push(tool_use("Read", {"file_path": path}, usage=usage(1000, 50)),
             tool_use("Edit", {"file_path": path, "old_string": "10", "new_string": "1"}, usage=usage(1200, 60),
                      stall_s=20))
    started = time.monotonic()
    summary = loop.run()
    assert time.monotonic() - started < 18
    crashed = summary.record.attempts[-1]
    assert crashed.status == "crash" and crashed.reason.startswith("cost cap: $0.0074 spent of $0.0050")
    assert crashed.cost_usd == pytest.approx(0.00375 + 0.0036 + 0.000015)  # the reply's first token too
    assert Path(path).read_text() == "10\n"
    assert summary.reason == "cost: $0.0074 of $0.0050 spent"
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
