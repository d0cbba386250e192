"""Protected and editable globs hold for every name git can store, and the reason names it safely."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from arl_bot import diffcheck
from arl_bot.git import Git
from arl_bot.globs import matches, matches_any

from tests.labs import make_lab

# Names git stores that a careless matcher treats differently from plain ones: `.` in a regex does not
# match a newline, and `$` matches before a trailing one.
ODD = [
    "injected\nplugin.py", "trailing\n", "\nleading", "tab\there.py", "back\\slash.py", "-rf", "--help",
    "café.py", "cafe\u0301.py", "日本語.py", "\u202eyp.exe", "zero\u200bwidth.py", "..x", "...", ".hidden",
    "x..", "sp ace.py", " lead", "q\"uote", "star*.py", "[brackets].py", "x" * 240,
]


@pytest.mark.parametrize("name", ODD)
def test_protected_globs_cover_every_name_inside(name: str) -> None:
    assert matches(f"eval/{name}", "eval/**")
    assert matches(f"eval/deep/{name}", "eval/**")
    assert matches(f"eval/{name}", "eval")  # a folder covers what is inside it
    assert matches(f"model/{name}", "model/*")
    assert matches(f"eval/{name}/run.py", "**/run.py")
    assert matches(f"eval/{name}", "**")


@pytest.mark.parametrize("name", ODD)
def test_names_outside_stay_outside(name: str) -> None:
    assert not matches(f"evaluation/{name}", "eval/**")
    assert not matches(f"models/{name}", "model/*")
    assert not matches(f"{name}eval/x", "eval/**")
    assert not matches(f"model/{name}\n", "model/x")


def test_single_character_wildcard_takes_a_newline_but_never_a_slash() -> None:
    assert matches("eval/a\nb", "eval/a?b") and not matches("eval/a/b", "eval/a?b")
    assert matches_any("x\ny.py", ["x*.py"]) and not matches_any("x/y.py", ["x*.py"])


def test_a_long_path_matches() -> None:
    deep = "/".join(["d" * 200] * 30) + "/f.py"  # ~6,000 characters: git stores it, PATH_MAX is no limit
    assert matches(f"eval/{deep}", "eval/**") and not matches(f"evalx/{deep}", "eval/**")


def _stage(root: Path, names: list[str]) -> Git:
    for name in names:
        path = root / os.fsdecode(os.fsencode(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("print('pwned')\n")
    repo = Git(root)
    repo.stage_all()
    return repo


@pytest.mark.parametrize("name", [*ODD, "\udcff\udcfe.py", "/".join(["d" * 250] * 6) + "/deep.py"])
def test_git_names_in_a_protected_folder_make_the_attempt_invalid(tmp_path: Path, name: str) -> None:
    # A real repository, real git: what the loop checks is what `git diff -z` reports.
    lab = make_lab(tmp_path, ["1"], config_text=None)
    lab.write(".autoresearch.yml", lab.root.joinpath(".autoresearch.yml").read_text()
              .replace('editable: ["model/**"]', 'editable: ["**"]'))
    lab.commit_all("everything editable, eval/** still protected")
    repo = _stage(lab.root, [f"eval/{name}"])
    changes = repo.staged_changes()
    assert [c.path for c in changes] == [f"eval/{name}"]
    reason = diffcheck.violation(changes, lab.loop())
    assert reason is not None and reason.startswith("changed protected paths: ")
    assert "\n" not in reason and "\t" not in reason and "\u202e" not in reason


def test_the_reason_names_the_path_as_git_quotes_it(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["1"])
    repo = _stage(lab.root, ["eval/injected\nplugin.py", "eval/x\x1b[2J.py"])
    reason = diffcheck.violation(repo.staged_changes(), lab.loop())
    assert reason == 'changed protected paths: "eval/injected\\nplugin.py", "eval/x\\x1b[2J.py"'
    quoted = subprocess.run(["git", "-c", "core.quotePath=true", "diff", "--cached", "--name-only"], cwd=lab.root,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert quoted[0] == '"eval/injected\\nplugin.py"'  # the same quoting git shows people


def test_editable_globs_take_odd_names_too(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["1"])
    repo = _stage(lab.root, ["model/new\nline.py", "model/-rf", "model/back\\slash.py"])
    assert diffcheck.violation(repo.staged_changes(), lab.loop()) is None
