"""What `arl-bot --version` and `arl-bot results` load: startup is every command's cost, so they import
no heavy package they do not use (counted in a fresh interpreter; the timings live in benchmarks/startup.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.labs import Lab, make_lab

# Top-level packages a command pays for at import: the GitHub client, model SDKs, plots, GitPython.
HEAVY = {"github", "anthropic", "docker", "torch", "optuna", "plotly", "matplotlib", "numpy", "sklearn",
         "git", "gitdb", "pydantic", "yaml", "requests", "httpx"}

# Runs main() in this interpreter, then names the heavy packages and arl_bot modules it loaded.
PROBE = """\
import contextlib, io, json, os, sys
import arl_bot.cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = arl_bot.cli.main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(os.environ["HEAVY"])))
ours = sorted(name for name in sys.modules if name.startswith("arl_bot"))
print(json.dumps({"code": code, "stdout": out.getvalue(), "heavy": heavy, "ours": ours}))
"""


def loaded(cwd: Path, *args: str) -> dict[str, Any]:
    """The exit code, output, heavy packages and arl_bot modules of `arl-bot <args>` run in cwd."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HEAVY": json.dumps(sorted(HEAVY))})
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.fixture
def lab_with_history(tmp_path: Path) -> Lab:
    """A lab with a real record: three attempts run through the command line."""
    lab = make_lab(tmp_path, ["8", "9"])
    subprocess.run([sys.executable, "-m", "arl_bot.cli", "run", "--dry-run", "--experiments", "2"], cwd=lab.root,
                   check=True, capture_output=True, timeout=120)
    return lab


def test_version_imports_nothing_but_the_command_line(tmp_path: Path) -> None:
    probe = loaded(tmp_path, "--version")
    assert probe["code"] == 0 and probe["stdout"] == "arl-bot 0.1.0\n"
    assert probe["heavy"] == []
    # None of the modules that read a config, a repository or a record, nor what they import.
    unneeded = ("arl_bot.config", "arl_bot.git", "arl_bot.store", "arl_bot.record", "arl_bot.registry",
                "arl_bot.results", "arl_bot.guards", "arl_bot.loop", "arl_bot.sandbox", "arl_bot.github")
    assert [m for m in probe["ours"] if m.startswith(unneeded)] == []


@pytest.mark.parametrize("args", [("results",), ("results", "--loop", "demo"), ("results", "--json")])
def test_results_loads_no_github_model_plot_or_gitpython_package(lab_with_history: Lab, args: tuple[str, ...]) -> None:
    probe = loaded(lab_with_history.root, *args)
    assert probe["code"] == 0
    assert "baseline" in probe["stdout"] and "discard" in probe["stdout"]  # it did read the record
    # pydantic and yaml remain: the record's guard columns come through the config's models (bot/guards.py).
    assert set(probe["heavy"]) <= {"pydantic", "yaml"}, probe["heavy"]
    unneeded = ("arl_bot.github", "arl_bot.loop", "arl_bot.report", "arl_bot.plot", "arl_bot.agents.anthropic")
    assert [m for m in probe["ours"] if m.startswith(unneeded)] == []
