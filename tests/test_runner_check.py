"""The runner check: what a self-hosted runner lacks fails the research job at its start, with the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from arl_bot.github import runner_check
from arl_bot.github.runner_check import (
    BWRAP_INSTALL,
    MIN_RUNNER,
    Facts,
    Problem,
    check_bwrap,
    check_disk,
    check_python,
    check_runner,
    phase_problem,
    problems,
    runner_version,
)

from tests.action_world import world
from tests.labs import git, make_lab, value_config

GOOD = Facts(python=(3, 12, 1), bwrap="/usr/bin/bwrap", bwrap_error="", free_bytes=50 * 1024**3,
             disk_path="/work", runner_version=(2, 330, 0), runner_note="")


def _without_bwrap(tmp_path: Path) -> str:
    """A PATH with every program of this one except bwrap: a runner where bubblewrap was never installed."""
    shadow = tmp_path / "path-without-bwrap"
    shadow.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = shadow / entry.name
            if entry.name != "bwrap" and not target.exists():
                target.symlink_to(entry.path)
    return str(shadow)


# --- pure checks -------------------------------------------------------------------------------------


def test_a_machine_with_everything_has_no_problem() -> None:
    assert problems(GOOD, None) == []


def test_missing_bwrap_names_the_install_command() -> None:
    [problem] = check_bwrap(None, "")
    assert "bubblewrap (`bwrap`) is not installed" in problem.what and problem.fix == BWRAP_INSTALL
    assert "apt-get install bubblewrap" in str(problem)


def test_bwrap_blocked_by_apparmor_names_the_sysctl() -> None:
    [problem] = check_bwrap("/usr/bin/bwrap", "bwrap: setting up uid map: Permission denied")
    assert "cannot start a sandbox: bwrap: setting up uid map: Permission denied" in problem.what
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in problem.fix


def test_bwrap_matters_only_where_a_loop_uses_it(tmp_path: Path) -> None:
    from arl_bot import config

    path = tmp_path / ".autoresearch.yml"
    path.write_text(value_config().replace("sandbox: none", "sandbox: docker"))
    docker_only = list(config.load(path).loops.values())
    facts = replace(GOOD, bwrap=None)
    assert problems(facts, docker_only) == []
    path.write_text(value_config().replace("    sandbox: none\n", ""))
    default = list(config.load(path).loops.values())
    assert [p.fix for p in problems(facts, default)] == [BWRAP_INSTALL]


def test_old_python_little_disk_and_an_old_runner_are_each_named() -> None:
    assert "Python 3.10.12 is older than 3.11" in check_python((3, 10, 12))[0].what
    assert check_python((3, 11, 0)) == []
    [disk] = check_disk(512 * 1024**2, "/runner/_work")
    assert "only 0.5 GiB free at /runner/_work" in disk.what
    [runner] = check_runner((2, 326, 9))
    assert "the Actions runner is 2.326.9; the pinned actions (node24) need 2.327.1 or later" in runner.what
    assert check_runner(MIN_RUNNER) == [] and check_runner(None) == []


def test_phase_all_is_refused_only_for_comments_on_self_hosted_runners() -> None:
    refused = phase_problem("all", "issue_comment", "self-hosted")
    assert "two-job workflow `arl-bot init` writes" in refused and "phase: gate" in refused
    assert phase_problem("all", "issue_comment", "github-hosted") == ""
    assert phase_problem("all", "schedule", "self-hosted") == ""
    assert phase_problem("gate", "issue_comment", "self-hosted") == ""


# --- the adapter, on this machine --------------------------------------------------------------------


def test_runner_version_comes_from_the_runners_listener(tmp_path: Path) -> None:
    # GitHub's runner lays itself out as <runner>/bin/Runner.Listener and <runner>/_work/<repo>; a
    # script prints what `Runner.Listener --version` prints.
    listener = tmp_path / "actions-runner" / "bin" / "Runner.Listener"
    listener.parent.mkdir(parents=True)
    listener.write_text("#!/bin/sh\necho 2.326.0\n")
    listener.chmod(0o755)
    workspace = tmp_path / "actions-runner" / "_work" / "repo"
    assert runner_version({"RUNNER_WORKSPACE": str(workspace)}) == ((2, 326, 0), "")
    facts = runner_check.gather({"RUNNER_WORKSPACE": str(workspace)}, tmp_path)
    assert [p.what for p in problems(facts, [])] == [
        "the Actions runner is 2.326.0; the pinned actions (node24) need 2.327.1 or later"]
    version, note = runner_version({"RUNNER_WORKSPACE": str(tmp_path / "elsewhere" / "_work" / "repo")})
    assert version is None and "no bin/Runner.Listener in" in note


def test_doctor_reports_a_missing_bwrap_with_the_install_command(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _without_bwrap(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "arl_bot.cli", "doctor", "--repo", str(tmp_path)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "bubblewrap  missing" in result.stdout
    assert f"fix: {BWRAP_INSTALL}" in result.stdout


def test_doctor_passes_on_a_machine_that_has_everything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_WORKSPACE"}  # as on a machine, not in a job
    result = subprocess.run([sys.executable, "-m", "arl_bot.cli", "doctor"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bubblewrap  works" in result.stdout and "ok: this machine can run the research job" in result.stdout
    assert "runner      not checked: not inside a runner job" in result.stdout


# --- through `arl-bot action` ------------------------------------------------------------------------


def test_phase_all_on_a_comment_on_a_self_hosted_runner_is_refused(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        pull = w.github.add_pull("autoresearch/demo")
        result, comment_id = w.comment(pull, "/autoresearch continue 1", ARL_PHASE="all",
                                       RUNNER_ENVIRONMENT="self-hosted")
        assert result.code == 2
        assert "the two-job workflow `arl-bot init` writes" in result.stderr
        assert "hint: set `phase: gate` in this job and add a research job" in result.stderr
        # Refused before reading the comment: no reaction, no reply, no request at all.
        assert w.github.reactions(comment_id) == [] and w.github.replies(pull) == []
        assert "run" not in result.outputs


def test_research_refuses_to_run_an_agent_without_a_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The loop does not say `sandbox: none`, and bwrap is missing: the old code ran the agent anyway,
    # next to the write token, with only a warning.
    monkeypatch.setenv("PATH", _without_bwrap(tmp_path))
    (tmp_path / "w").mkdir()
    with world(tmp_path / "w", config_text=value_config().replace("    sandbox: none\n", "")) as w:
        result = w.dispatch(experiments=1)
        assert result.code == 1, result.stderr
        assert "loop 'demo' would run its agent and evaluation without a sandbox" in result.stderr
        assert BWRAP_INSTALL in result.stderr and "`sandbox: none`" in result.stderr
        assert w.lab.remote is not None
        assert "autoresearch/demo" not in git(w.lab.remote, "branch", "--list"), "nothing may have run"


def test_starting_a_run_for_the_action_never_falls_back_to_no_sandbox(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Behind the runner check: should bwrap vanish after it, the research job's start refuses too.
    from arl_bot.loop import RunOptions
    from arl_bot.sandbox import SandboxRequired
    from arl_bot.start import prepare_run

    monkeypatch.setenv("PATH", _without_bwrap(tmp_path))
    lab = make_lab(tmp_path, ["8"], config_text=value_config().replace("    sandbox: none\n", ""))
    with pytest.raises(SandboxRequired):
        prepare_run(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True), listeners=[],
                    require_isolation=True)
    started = prepare_run(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True), listeners=[])
    assert started.sandbox_warning  # the CLI runs on, and says so


def test_an_explicit_sandbox_none_still_runs_without_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _without_bwrap(tmp_path))
    (tmp_path / "w").mkdir()
    with world(tmp_path / "w") as w:  # the lab's config says `sandbox: none`
        result = w.dispatch(experiments=1)
        assert result.code == 0, result.stderr
        assert w.remote_log()[0]


def test_problem_reads_as_what_then_fix() -> None:
    assert str(Problem("x is missing", "install x")) == "x is missing\n    fix: install x"


def test_the_research_job_log_says_what_the_check_saw(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        result = w.dispatch(experiments=1)
        assert result.code == 0, result.stderr
        line = next(x for x in result.stderr.splitlines() if x.startswith("arl-bot: runner check: "))
        assert "bubblewrap works" in line and "GiB free at" in line
        assert "runner version not checked (not inside a runner job" in line
