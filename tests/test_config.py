"""`.autoresearch.yml`: defaults, and errors that name the file, the line and the key."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from arl_bot import config
from arl_bot.cli import main
from arl_bot.errors import ConfigError

pytestmark = pytest.mark.unit

SMALLEST = textwrap.dedent("""\
    version: 1
    loops:
      charlm:
        editable: ["model/**"]
        metric: {name: val_bpb}
        evaluate: {command: "python eval.py --seed {seed}"}
        agent: {kind: command, command: "python propose.py"}
    """)


def error_for(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config.parse(text, "lab/.autoresearch.yml")
    return info.value


def test_the_smallest_config_gets_sensible_defaults() -> None:
    loop = config.parse(SMALLEST).loop(None)
    assert loop.name == "charlm"
    assert loop.branch == "autoresearch/charlm"
    assert loop.metric.goal == "minimize" and loop.metric.min_delta == 0.0
    assert loop.evaluate.seeds == [42] and loop.evaluate.timeout == 600
    assert loop.instructions == "AGENT.md"
    assert loop.budget.experiments == 20 and loop.budget.crashes == 5
    assert ".autoresearch.yml" in loop.all_protected


def test_unknown_key_names_file_line_and_key() -> None:
    err = error_for(SMALLEST.replace("metric: {name: val_bpb}", "metric: {name: val_bpb}\n    seed: 3"))
    assert str(err).startswith("lab/.autoresearch.yml:6: loops.charlm.seed: unknown key 'seed'")
    assert err.line == 6 and err.key == "loops.charlm.seed"
    assert "known keys here" in str(err) and "evaluate" in str(err)


def test_a_typo_is_reported_rather_than_the_key_it_hides() -> None:
    err = error_for(SMALLEST.replace("    agent:", "    agnet:"))
    assert "unknown key 'agnet'" in str(err) and err.line == 7


def test_wrong_type_says_what_it_got() -> None:
    err = error_for(SMALLEST.replace('evaluate: {command: "python eval.py --seed {seed}"}',
                                     'evaluate: {command: "python eval.py", timeout: soon}'))
    assert err.line == 6 and err.key == "loops.charlm.evaluate.timeout"
    assert '"soon"' in str(err)


def test_goal_must_be_minimize_or_maximize() -> None:
    err = error_for(SMALLEST.replace("{name: val_bpb}", "{name: val_bpb, goal: minimise}"))
    assert err.line == 5 and err.key == "loops.charlm.metric.goal"
    assert "use `minimize` or `maximize`" in str(err)


def test_evaluate_needs_a_command_or_a_backend() -> None:
    err = error_for(SMALLEST.replace('{command: "python eval.py --seed {seed}"}', "{timeout: 5}"))
    assert err.line == 6 and err.key == "loops.charlm.evaluate"
    assert "exactly one of `command` or `backend`" in str(err)


@pytest.mark.parametrize(("glob", "why"), [
    ("/abs/**", "drop the leading '/'"),
    ("../outside", "'..' would leave the repository"),
    ("model/[abc", "unbalanced"),
])
def test_bad_globs_are_refused(glob: str, why: str) -> None:
    err = error_for(SMALLEST.replace('["model/**"]', f'["{glob}"]'))
    assert err.line == 4 and err.key == "loops.charlm.editable"
    assert why in str(err)


def test_loop_names_become_branch_names_so_they_are_checked() -> None:
    err = error_for(SMALLEST.replace("charlm:", "Char LM:"))
    assert err.line == 3 and "lowercase letters, digits and '-'" in str(err)


def test_duplicate_keys_are_an_error_not_a_silent_override() -> None:
    err = error_for(SMALLEST + "    editable: [\"x\"]\n")
    assert err.line == 8 and "appears twice" in str(err)


def test_invalid_yaml_points_at_the_line() -> None:
    err = error_for(SMALLEST.replace("metric: {name: val_bpb}", "metric: {name: val_bpb"))
    assert err.line is not None and "not valid YAML" in str(err)


def test_missing_required_key_names_its_parent_line() -> None:
    err = error_for(SMALLEST.replace('    editable: ["model/**"]\n', ""))
    assert err.line == 3 and "missing required key 'editable'" in str(err)


def test_regex_needs_a_capture_group() -> None:
    err = error_for(SMALLEST.replace('evaluate: {command: "python eval.py --seed {seed}"}',
                                     "evaluate: {command: x, parse: {regex: 'bpb: [0-9.]+'}}"))
    assert "capture group" in str(err) and err.key == "loops.charlm.evaluate.parse.regex"


def test_missing_file_hints_at_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file") as info:
        config.load(tmp_path / ".autoresearch.yml")
    assert "arl-bot init" in str(info.value)


def test_schema_command_prints_a_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    loop = schema["$defs"]["Loop"]
    assert {"editable", "metric", "evaluate", "agent"} <= set(loop["required"])
    assert loop["additionalProperties"] is False
    assert schema["$defs"]["Metric"]["properties"]["goal"]["enum"] == ["minimize", "maximize"]
