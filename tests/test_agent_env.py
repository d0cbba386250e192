"""What an agent's process sees of the bot's environment: the variables it is given, never the GitHub token."""

from __future__ import annotations

from pathlib import Path

import pytest
from arl_bot import config
from arl_bot.agents import AgentTask, get_agent
from arl_bot.sandbox import get_sandbox

from tests.labs import make_lab, value_config


def test_pass_env_hands_named_variables_to_a_command_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_API_KEY", "sk-for-aider")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    monkeypatch.setenv("OTHER_SECRET", "not-passed")
    command = 'printf "%s|%s|%s" "$MY_API_KEY" "$GITHUB_TOKEN" "$OTHER_SECRET" > model/seen.txt'
    lab = make_lab(tmp_path, ["1"], config_text=value_config(
        agent=f"{{kind: command, command: '{command}', pass_env: [MY_API_KEY, UNSET_NAME]}}"))
    prompt = tmp_path / "work" / "prompt.md"
    prompt.parent.mkdir()
    prompt.write_text("x")
    result = get_agent(lab.loop(), get_sandbox("none")).propose(AgentTask(
        tree=lab.root, prompt="x", prompt_file=prompt, experiment=1, mode="improve", parent="HEAD", timeout=10))
    assert result.ok, result.log
    assert (lab.root / "model/seen.txt").read_text() == "sk-for-aider||"


@pytest.mark.unit
def test_the_github_token_cannot_be_passed() -> None:
    with pytest.raises(config.ConfigError, match="never gets the GitHub token"):
        config.parse(value_config(agent="{kind: claude-code, pass_env: [GH_TOKEN]}"))
