"""When the user's main moves: the run says so, `arl-bot rebase` brings it in, keeps never revert it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from arl_bot.commands import Command, Problem, parse
from arl_bot.record import Record
from arl_bot.store import RecordStore

from tests.action_world import world
from tests.labs import EVAL_VALUE, Lab, make_lab, value_config

ARL = [sys.executable, "-m", "arl_bot.cli"]
# main's new evaluation: reads a new protected file, so a branch without it (or with the old one) scores otherwise
EVAL_OFFSET = EVAL_VALUE.replace('print(f"score: {float(text)}")',
                                 'print(f"score: {float(text) + float(Path(\'eval/offset.txt\').read_text())}")')


def arl(lab: Lab, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*ARL, *args], cwd=lab.root, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"arl-bot {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
    return result


def record(lab: Lab) -> Record:
    loaded = RecordStore(lab.repo, "demo").load()
    assert loaded is not None
    return loaded


def move_main(lab: Lab) -> str:
    """The user commits a new evaluation on main: it needs a new protected file, eval/offset.txt."""
    lab.write("eval/offset.txt", "100\n")
    lab.write("eval/run.py", EVAL_OFFSET)
    lab.commit_all("evaluation with an offset")
    return lab.git("rev-parse", "main")


def test_a_run_says_main_moved_and_how_to_bring_it_in(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"])
    arl(lab, "run", "--dry-run", "--experiments", "1")
    move_main(lab)
    result = arl(lab, "run", "--dry-run", "--experiments", "1")
    assert "main moved 1 commit ahead of the research branch" in result.stderr
    assert "arl-bot rebase --loop demo" in result.stderr
    assert "`main` moved 1 commit ahead; `/autoresearch rebase` brings them in" in result.stdout  # the PR body
    assert record(lab).notes[-2].data["base_behind"] == 1  # the run_start note the PR body reads


def test_rebase_merges_main_adopts_its_protected_files_and_re_measures(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"])
    arl(lab, "run", "--dry-run", "--experiments", "1")
    head = lab.git("rev-parse", "autoresearch/demo")
    main = move_main(lab)
    result = arl(lab, "rebase", "--dry-run")
    assert "re-measured: 108.0" in result.stderr and "brings them in" not in result.stderr
    rec = record(lab)
    assert rec.meta.base_sha == main  # the new base: its protected files are what evaluations use from now on
    rebased = rec.attempts[-1]
    assert (rebased.status, rebased.mode, rebased.metric) == ("baseline", "rebase", 108.0)
    assert rebased.extra["rebase"]["from"] != main and rebased.extra["rebase"]["to"] == main
    new_head = lab.git("rev-parse", "autoresearch/demo")
    assert rebased.sha == new_head and lab.git("rev-parse", f"{new_head}^1", f"{new_head}^2").split() == [head, main]
    assert lab.git("show", "autoresearch/demo:eval/offset.txt") == "100"
    assert lab.git("show", "autoresearch/demo:model/value.txt") == "8"  # the loop's work stays
    again = arl(lab, "run", "--dry-run", "--experiments", "1")  # experiment 3 writes 7: 107 with main's evaluation
    assert "moved" not in again.stderr
    assert [(a.status, a.metric) for a in record(lab).attempts[-1:]] == [("keep", 107.0)]
    assert "nothing to bring in" in arl(lab, "rebase", "--dry-run").stderr


def test_after_a_manual_merge_a_keep_commits_only_the_agents_change(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"])
    arl(lab, "run", "--dry-run", "--experiments", "1")
    move_main(lab)
    lab.write(".autoresearch.yml", (lab.root / ".autoresearch.yml").read_text() + "# reviewed\n")
    lab.commit_all("config note")
    lab.git("checkout", "--quiet", "autoresearch/demo")
    lab.git("merge", "--quiet", "--no-edit", "main")
    lab.git("checkout", "--quiet", "main")
    result = arl(lab, "run", "--dry-run", "--experiments", "1")  # re-measures the merge, then experiment 3 keeps 7
    assert "`arl-bot rebase --loop demo`" in result.stderr  # the drifted protected paths: how to adopt them
    keep = record(lab).attempts[-1]
    assert keep.status == "keep" and keep.sha is not None
    assert lab.git("diff", "--name-only", f"{keep.sha}^", keep.sha) == "model/value.txt"
    assert lab.git("show", f"{keep.sha}:eval/offset.txt") == "100"  # the old code deleted it (not in the base)
    assert lab.git("show", f"{keep.sha}:.autoresearch.yml").endswith("# reviewed")


def test_rebase_after_a_manual_merge_adopts_it_without_another_merge(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"])
    arl(lab, "run", "--dry-run", "--experiments", "1")
    main = move_main(lab)
    lab.git("checkout", "--quiet", "autoresearch/demo")
    lab.git("merge", "--quiet", "--no-edit", "main")
    lab.git("checkout", "--quiet", "main")
    merged = lab.git("rev-parse", "autoresearch/demo")
    arl(lab, "rebase", "--dry-run")
    rec = record(lab)
    assert rec.meta.base_sha == main and rec.attempts[-1].metric == 108.0
    assert lab.git("rev-parse", "autoresearch/demo^") == merged  # one parent: main is in already
    assert "arl-bot rebase" not in arl(lab, "run", "--dry-run", "--experiments", "1").stderr


def test_a_conflicting_rebase_changes_nothing_and_says_how_to_merge_by_hand(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"])
    arl(lab, "run", "--dry-run", "--experiments", "1")
    head = lab.git("rev-parse", "autoresearch/demo")
    before = record(lab)
    lab.write("model/value.txt", "12\n")  # the same line the loop changed
    lab.commit_all("a different value")
    result = arl(lab, "rebase", "--dry-run", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "conflicts; nothing was changed" in result.stderr and "git merge main" in result.stderr
    assert lab.git("rev-parse", "autoresearch/demo") == head
    after = record(lab)
    assert after.meta == before.meta and len(after.attempts) == len(before.attempts)


def test_a_base_that_does_not_evaluate_is_not_adopted(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"])
    arl(lab, "run", "--dry-run", "--experiments", "1")
    head = lab.git("rev-parse", "autoresearch/demo")
    base = record(lab).meta.base_sha
    lab.write("eval/run.py", "import sys\nsys.exit(4)\n")
    lab.commit_all("broken evaluation")
    result = arl(lab, "rebase", "--dry-run", check=False)
    assert result.returncode != 0 and "the evaluation fails" in result.stderr and "Traceback" not in result.stderr
    assert lab.git("rev-parse", "autoresearch/demo") == head
    rec = record(lab)
    assert rec.meta.base_sha == base and rec.attempts[-1].status == "crash"
    assert arl(lab, "run", "--dry-run", "--experiments", "1").returncode == 0  # the loop goes on on its old base


def test_the_rebase_comment_command_parses() -> None:
    assert parse("/autoresearch rebase") == Command("rebase", "/autoresearch rebase")
    problem = parse("/autoresearch rebase now")
    assert isinstance(problem, Problem) and "takes no arguments" in problem.reason
    suggestion = parse("/autoresearch rebsae")
    assert isinstance(suggestion, Problem) and "did you mean `rebase`" in suggestion.reason


def test_the_rebase_comment_merges_main_on_the_pull_request(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        assert w.dispatch(experiments=1).code == 0
        main = move_main(w.lab)
        moved = w.dispatch(experiments=1)
        assert moved.code == 0, moved.stderr
        assert "`main` moved 1 commit ahead; `/autoresearch rebase` brings them in" in w.pr_body()
        result, comment_id = w.comment(1, "/autoresearch rebase")
        assert result.code == 0, result.stderr
        assert result.outputs["command"] == "rebase"
        assert w.github.reactions(comment_id) == ["eyes", "rocket"]
        assert w.remote_log()[0].startswith("Merge main (1 new commit")
        rec = w.record()
        assert rec is not None and rec.meta.base_sha == main
        assert (rec.attempts[-1].status, rec.attempts[-1].mode) == ("baseline", "rebase")
        assert "moved 1 commit" not in w.pr_body()



def test_a_drifted_path_named_like_a_glob_never_takes_back_the_agent_s_change(tmp_path: Path) -> None:
    config = value_config().replace('"eval/**"', '"eval/**", "model/[*]"')  # protects the file named `model/*`
    lab = make_lab(tmp_path, ["8", "9", "7"], config_text=config)
    arl(lab, "run", "--dry-run", "--experiments", "1")
    lab.write("model/*", "a protected file whose name is also a git glob for every file in model/\n")
    lab.commit_all("add model/*")
    lab.git("checkout", "--quiet", "autoresearch/demo")
    lab.git("merge", "--quiet", "--no-edit", "main")
    lab.git("checkout", "--quiet", "main")
    arl(lab, "run", "--dry-run", "--experiments", "1")
    keep = record(lab).attempts[-1]
    assert keep.status == "keep" and keep.sha is not None
    assert lab.git("diff", "--name-only", f"{keep.sha}^", keep.sha) == "model/value.txt"
    assert lab.git("show", f"{keep.sha}:model/value.txt") == "7"
