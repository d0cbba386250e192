"""`sandbox:` in the config: the string form, the mapping form, the schema, and which backend runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from arl_bot import config
from arl_bot.errors import ConfigError
from arl_bot.policy import agent_policy
from arl_bot.sandbox import choose_sandbox
from arl_bot.sandbox.bubblewrap import BubblewrapSandbox

from tests.labs import value_config

pytestmark = pytest.mark.unit


def loop_with(sandbox: str) -> config.Loop:
    return config.parse(value_config().replace("sandbox: none", sandbox)).loop(None)


def test_string_and_mapping_forms_both_choose_a_backend() -> None:
    assert choose_sandbox(loop_with("sandbox: none")).name == "none"
    assert not choose_sandbox(loop_with("sandbox: none")).isolated
    mapped = choose_sandbox(loop_with("sandbox: {kind: bubblewrap, evaluation: {memory_mb: 512}}"))
    assert isinstance(mapped, BubblewrapSandbox) and mapped.settings.evaluation.memory_mb == 512


def test_bubblewrap_is_the_default_where_installed() -> None:
    assert choose_sandbox(loop_with("")).name == "bubblewrap"


def test_phase_settings_override_the_policy(tmp_path: Path) -> None:
    sandbox = choose_sandbox(loop_with("sandbox: {agent: {network: false, processes: 100}, hidden: [~/data]}"))
    policy = sandbox.resolve(agent_policy(tmp_path, tmp_path / "work", {}))
    assert policy.network is False and policy.limits.processes == 100
    assert Path("~/data").expanduser() in policy.hidden and Path("~/.ssh").expanduser() in policy.hidden


def test_a_wrong_sandbox_names_line_and_choices() -> None:
    with pytest.raises(ConfigError) as info:
        loop_with("sandbox: podman")
    assert "unknown sandbox 'podman'" in str(info.value) and ":13:" in str(info.value)
    assert "known: bubblewrap, docker, none" in str(info.value) and "arl_bot.sandboxes" in str(info.value)
    with pytest.raises(ConfigError, match="unknown key 'memroy'"):
        loop_with("sandbox: {evaluation: {memroy: 1}}")


def test_schema_shows_both_forms() -> None:
    sandbox = config.json_schema()["$defs"]["Loop"]["properties"]["sandbox"]["anyOf"]
    assert {"enum": ["bubblewrap", "docker", "none"], "type": "string"} in sandbox
    mapping = next(form for form in sandbox if form.get("type") == "object")  # each kind's own keys
    assert {"$ref": "#/$defs/DockerOptions"} in [rule["then"] for rule in mapping["allOf"]]
