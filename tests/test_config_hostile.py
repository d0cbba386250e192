"""Hostile `.autoresearch.yml` files through the CLI: exit 2 and file:line: key with a hint, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from arl_bot import config

from tests.labs import Lab, make_lab, value_config

GOOD = value_config()


def cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """arl-bot as the user runs it, in the lab."""
    return subprocess.run([sys.executable, "-m", "arl_bot.cli", *args], cwd=lab.root, capture_output=True,
                          text=True, timeout=120)


def refused(lab: Lab, text: str | bytes, *args: str) -> str:
    """Write the config, run the CLI, and return its error after checking how it failed."""
    target = lab.root / config.CONFIG_FILE
    target.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = cli(lab, *(args or ("run", "--dry-run")))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"arl-bot: error: {target}:"), result.stderr
    assert "hint:" in result.stderr, result.stderr
    return result.stderr


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return make_lab(tmp_path, ["5"])


BOMB = "l0: &l0 [lol]\n" + "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 10))

CASES = {
    # name: (edit of the good config, the key named, the line's text, words of the message)
    "400-digit float": (("timeout: 20", "timeout: 1" + "0" * 400), "loops.demo.evaluate.timeout",
                        "timeout: 1000", "401-digit number is too large"),
    "400-digit int": (("sandbox: none", "sandbox: {kind: none, evaluation: {processes: 1" + "0" * 400 + "}}"),
                      "loops.demo.sandbox.evaluation.processes", "processes: 1000", "less than or equal"),
    "infinite timeout": (("timeout: 20", "timeout: .inf"), "loops.demo.evaluate.timeout", "timeout: .inf",
                         "must be a finite number"),
    "infinite hours": (("budget: {experiments: 5}", "budget: {experiments: 5, hours: .inf}"),
                       "loops.demo.budget.hours", "hours: .inf", "must be a finite number"),
    "NaN target": (("budget: {experiments: 5}", "budget: {experiments: 5, target: .nan}"),
                   "loops.demo.budget.target", "target: .nan", "must be a finite number"),
    "a month-long timeout": (("timeout: 20", "timeout: 1.0e+12"), "loops.demo.evaluate.timeout", "timeout: 1.0e+12",
                             "less than or equal to 2592000"),
    "editable equals protected": (('protected: ["eval/**"', 'protected: ["model/**", "eval/**"'),
                                  "loops.demo.editable", "editable:", "every `editable` glob is covered"),
    "protected covers editable": (('protected: ["eval/**"', 'protected: ["**", "eval/**"'),
                                  "loops.demo.editable", "editable:", "every `editable` glob is covered"),
    "editable only the config": (('editable: ["model/**"]', 'editable: [".autoresearch.yml"]'),
                                 "loops.demo.editable", "editable:", "names only .autoresearch.yml"),
    "absolute instructions": (("    sandbox: none", "    sandbox: none\n    instructions: /etc/passwd"),
                              "loops.demo.instructions", "instructions:", "inside the repository"),
    "instructions above the repository": (("    sandbox: none", "    sandbox: none\n    instructions: ../x.md"),
                                          "loops.demo.instructions", "instructions:", "inside the repository"),
    "misspelt agent kind": (("kind: command", "kind: comand"), "loops.demo.agent.kind", "kind: comand",
                            "unknown agent kind 'comand'; did you mean 'command'?"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_config_that_can_never_work_is_refused_with_file_line_and_key(lab: Lab, name: str) -> None:
    (old, new), key, line_text, words = CASES[name]
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    error = refused(lab, text)
    assert f".autoresearch.yml:{line_of(text, line_text)}: {key}: " in error, error
    assert words in error, error


def test_an_alias_bomb_is_refused_before_it_expands(lab: Lab) -> None:
    # Nine levels of ten aliases: 10^9 values once constructed (the old code spent 19 s and gigabytes).
    error = refused(lab, BOMB + GOOD)
    assert f".autoresearch.yml:{line_of(BOMB, 'l5:')}: its aliases expand to more than 100,000 values" in error


def test_a_recursive_anchor_is_refused(lab: Lab) -> None:
    text = GOOD.replace("    sandbox: none", "    sandbox: none\n    runner: &r [gpu, *r]")
    error = refused(lab, text)
    assert f":{line_of(text, 'runner:')}: an alias refers to the anchor it is inside" in error


def test_deep_nesting_is_refused(lab: Lab) -> None:
    assert "nested too deeply" in refused(lab, "x: " + "[" * 5000 + "]" * 5000 + "\n" + GOOD)


def test_a_file_that_is_not_utf8_names_the_line(lab: Lab) -> None:
    text = GOOD.encode().replace(b"version: 1", b"version: 1\n# caf\xe9")
    assert ".autoresearch.yml:2: not UTF-8: byte 0xe9" in refused(lab, text)


def test_sandbox_limits_beyond_the_host_are_refused_where_the_loop_runs(lab: Lab) -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    memory = GOOD.replace("sandbox: none", f"sandbox: {{kind: none, agent: {{memory_mb: {ram_mb * 2}}}}}")
    error = refused(lab, memory)
    assert f":{line_of(memory, 'sandbox:')}: loops.demo.sandbox.agent.memory_mb: {ram_mb * 2} MB is more " \
           f"than this machine's {ram_mb} MB of RAM" in error
    if pid_max < config.PID_MAX_LIMIT:
        pids = GOOD.replace("sandbox: none", f"sandbox: {{kind: none, evaluation: {{processes: {pid_max + 1}}}}}")
        assert "loops.demo.sandbox.evaluation.processes: " in refused(lab, pids, "eval")
    # The same file is fine for `results` (the gate reads configs on other machines than the runner).
    assert "has no record" in cli(lab, "results").stderr


def test_the_good_config_still_runs(lab: Lab) -> None:
    result = cli(lab, "run", "--dry-run", "--experiments", "1")
    assert result.returncode == 0, result.stderr
