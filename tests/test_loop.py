"""The research loop on real repositories: every outcome, every stop, and resuming."""

from __future__ import annotations

from pathlib import Path

import pytest
from arl_bot.errors import ArlError
from arl_bot.loop import RunOptions, RunSummary, Session
from arl_bot.store import RecordStore

from tests.labs import PY, Lab, make_lab, running, value_config


def run(lab: Lab, experiments: int | None = None, **options: object) -> RunSummary:
    opts = RunOptions(experiments=experiments, dry_run=bool(options.pop("dry_run", True)), **options)  # type: ignore[arg-type]
    return Session(lab.repo, lab.config(), lab.loop(), opts).run()


def statuses(summary: RunSummary) -> list[str]:
    return [a.status for a in summary.record.attempts]


def branch_log(lab: Lab, loop: str = "demo") -> list[str]:
    return lab.git("log", "--format=%s", f"main..autoresearch/{loop}").splitlines()


def test_baseline_is_measured_not_assumed(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["9"], start="12.5")
    summary = run(lab, 1)
    baseline = summary.record.attempts[0]
    assert (baseline.experiment, baseline.status, baseline.metric) == (0, "baseline", 12.5)
    assert baseline.sha == lab.git("rev-parse", "main")


def test_each_keep_is_one_commit_whose_sha_the_record_holds(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "5", "6"])
    summary = run(lab, 4)
    assert statuses(summary) == ["baseline", "keep", "discard", "keep", "discard"]
    assert branch_log(lab) == ["set value to 5", "set value to 8"]
    kept = [a for a in summary.record.attempts if a.status == "keep"]
    assert [a.sha for a in kept][::-1] == lab.git("log", "--format=%H", "main..autoresearch/demo").splitlines()
    trailers = lab.git("log", "-1", "--format=%(trailers)", "autoresearch/demo")
    assert "Autoresearch-Experiment: 3" in trailers and "Autoresearch-Metric: 5.0" in trailers
    assert lab.git("show", "autoresearch/demo:model/value.txt") == "5"


def test_maximize_keeps_higher_values(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["12", "11", "20"], config_text=value_config(goal="maximize"))
    assert statuses(run(lab, 3)) == ["baseline", "keep", "discard", "keep"]


def test_min_delta_discards_gains_too_small_to_count(tmp_path: Path) -> None:
    text = value_config().replace("metric: {name: score, goal: minimize}",
                                  "metric: {name: score, goal: minimize, min_delta: 0.5}")
    lab = make_lab(tmp_path, ["9.8", "9.4"], config_text=text)
    summary = run(lab, 2)
    assert statuses(summary) == ["baseline", "discard", "keep"]
    assert "by more than 0.5" in summary.record.attempts[1].reason


def test_crashes_are_recorded_with_the_reason_and_leave_the_tree_at_the_best(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["crash", "silent", "nan", "7"])
    summary = run(lab, 4)
    assert statuses(summary) == ["baseline", "crash", "crash", "crash", "keep"]
    reasons = [a.reason for a in summary.record.attempts[1:4]]
    assert reasons[0] == "exited with status 3"
    assert reasons[1].startswith("no metric: no line `score: <number>`")
    assert reasons[2] == "no metric: the metric is nan"
    assert branch_log(lab) == ["set value to 7"]


def test_evaluation_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    evaluation = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    text = value_config().replace("timeout: 20", "timeout: 1")
    lab = make_lab(tmp_path, ["8"], config_text=text, files={"eval/slow.py": evaluation})
    lab.write("values.txt", "8\n")
    # The baseline must pass, so the slow evaluation only runs for the agent's value.
    lab.write("eval/run.py", lab.root.joinpath("eval/run.py").read_text().replace(
        'text = Path("model/value.txt").read_text().strip()',
        'text = Path("model/value.txt").read_text().strip()\n'
        'if text == "8":\n    exec(open("eval/slow.py").read())'))
    lab.commit_all("slow evaluation for 8")
    summary = run(lab, 1)
    assert statuses(summary) == ["baseline", "crash"]
    assert summary.record.attempts[1].reason == "timed out after 1s"
    child = int(pidfile.read_text())
    assert not running(child)


def test_background_children_do_not_outlive_a_clean_evaluation(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    lab = make_lab(tmp_path, ["8"])
    lab.write("eval/run.py", lab.root.joinpath("eval/run.py").read_text() + (
        "import subprocess, sys\n"
        "bg = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(bg.pid))\n"))
    lab.commit_all("evaluation that leaves a child")
    run(lab, 1)
    assert not running(int(pidfile.read_text()))


@pytest.mark.parametrize(("agent_action", "reason"), [
    ("Path('eval/run.py').write_text('print(\"score: 0\")')", "changed protected paths: eval/run.py"),
    ("Path('notes.txt').write_text('x')", "changed paths outside editable (model/**): notes.txt"),
    ("pass", "the agent changed nothing"),
    ("Path('model/value.txt').write_text('1'); Path('stray.log').write_text('x')",
     "changed paths outside editable (model/**): stray.log"),
    ("Path('.autoresearch.yml').write_text('version: 1')", "changed protected paths: .autoresearch.yml"),
])
def test_rule_breaking_changes_are_invalid_and_leave_nothing_behind(
    tmp_path: Path, agent_action: str, reason: str
) -> None:
    lab = make_lab(tmp_path, ["1"], files={"rogue.py": f"from pathlib import Path\n{agent_action}\n"})
    text = value_config(agent=f'{{kind: command, command: "{PY} rogue.py"}}').replace(
        '"agent.py"', '"agent.py", "rogue.py"')
    lab.write(".autoresearch.yml", text)
    lab.commit_all("rogue agent")
    summary = run(lab, 1)
    attempt = summary.record.attempts[1]
    assert (attempt.status, attempt.reason) == ("invalid", reason)
    assert branch_log(lab) == []
    tree = Path(lab.root / ".arl-bot" / "worktrees" / "demo")
    assert Lab(tree).git("status", "--porcelain", "--ignored") == ""
    assert lab.git("status", "--porcelain") == ""  # the user's checkout is untouched


def test_files_created_by_a_discarded_attempt_are_removed(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["99"], files={"rogue.py": (
        "from pathlib import Path\nPath('model/value.txt').write_text('99')\n"
        "Path('model/extra.txt').write_text('left over')\n")})
    lab.write(".autoresearch.yml", value_config(agent=f'{{kind: command, command: "{PY} rogue.py"}}'))
    lab.commit_all("agent that adds a file")
    summary = run(lab, 1)
    assert statuses(summary) == ["baseline", "discard"]
    assert summary.record.attempts[1].files == ["model/extra.txt", "model/value.txt"]
    tree = Path(lab.root / ".arl-bot" / "worktrees" / "demo")
    assert not (tree / "model/extra.txt").exists()
    assert "+left over" in RecordStore(lab.repo, "demo").diff(1)


def test_evaluation_always_runs_the_base_s_protected_code(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"])
    run(lab, 1)
    # Someone commits a rigged evaluation straight onto the research branch (the worktree is detached: the
    # branch can be checked out in the user's own checkout).
    lab.git("checkout", "--quiet", "autoresearch/demo")
    lab.write("eval/run.py", "print('score: -1000')\n")
    lab.commit_all("rig the evaluation")
    lab.git("checkout", "--quiet", "main")
    summary = run(lab, 1)
    remeasured, attempt = summary.record.attempts[-2:]
    assert (remeasured.status, remeasured.metric) == ("baseline", 8.0)  # the branch moved: measured again
    assert (attempt.status, attempt.metric) == ("keep", 7.0)  # with the base's evaluation, not the rigged one


@pytest.mark.parametrize(("budget", "values", "reason"), [
    ("{experiments: 2}", ["9", "8", "7"], "experiments: ran 2 of 2"),
    ("{experiments: 9, target: 7.5}", ["9", "7", "6"], "target: best score 7 reached 7.5"),
    ("{experiments: 9, plateau: 2}", ["9", "11", "12", "8"], "plateau: 2 experiments without a keep"),
    ("{experiments: 9, crashes: 2}", ["9", "crash", "crash", "8"], "crashes: 2 crashes in a row"),
    ("{experiments: 9, hours: 0.0000001}", ["9"], "hours:"),
])
def test_each_budget_stops_the_run_and_the_reason_is_recorded(
    tmp_path: Path, budget: str, values: list[str], reason: str
) -> None:
    lab = make_lab(tmp_path, values, config_text=value_config(budget=budget))
    summary = run(lab)
    assert summary.reason.startswith(reason)
    assert summary.record.stop_reason == summary.reason
    assert RecordStore(lab.repo, "demo").load().stop_reason == summary.reason  # type: ignore[union-attr]


def test_target_respects_the_goal_direction(tmp_path: Path) -> None:
    text = value_config(goal="maximize", budget="{experiments: 9, target: 11}")
    lab = make_lab(tmp_path, ["10.5", "12", "13"], config_text=text)
    summary = run(lab)
    assert statuses(summary) == ["baseline", "keep", "keep"]
    assert summary.reason.startswith("target: best score 12 reached 11")


def test_resume_reads_the_best_back_from_the_record(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7", "7.5"])
    run(lab, 2)
    second = run(lab, 2)
    assert statuses(second) == ["baseline", "keep", "discard", "keep", "discard"]
    assert [a.experiment for a in second.attempts] == [3, 4]
    assert second.attempts[0].best_before == 8.0
    assert branch_log(lab) == ["set value to 7", "set value to 8"]


def test_a_failing_baseline_stops_with_advice(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8"], start="crash")
    with pytest.raises(ArlError, match="baseline evaluation failed: exited with status 3") as info:
        run(lab, 3)
    assert "arl-bot eval" in str(info.value)
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None and [a.status for a in record.attempts] == ["crash"]


def test_a_crashing_agent_is_a_crash_and_counts_toward_the_crash_stop(tmp_path: Path) -> None:
    text = value_config(agent=f'{{kind: command, command: "{PY} -c \\"raise SystemExit(4)\\""}}',
                        budget="{experiments: 9, crashes: 2}")
    lab = make_lab(tmp_path, ["8"], config_text=text)
    summary = run(lab)
    assert statuses(summary) == ["baseline", "crash", "crash"]
    assert summary.record.attempts[1].reason == "agent exited with status 4"


def test_the_user_checkout_branch_index_and_uncommitted_work_are_untouched(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "7"])
    lab.write("model/value.txt", "3\n")  # uncommitted work in progress
    lab.write("scratch.txt", "mine\n")
    lab.git("add", "scratch.txt")
    before = (lab.git("status", "--porcelain"), lab.git("rev-parse", "HEAD"), lab.git("branch", "--show-current"))
    lines: list[str] = []

    class Collect:
        def on_warning(self, session: Session, text: str) -> None:
            lines.append(text)

    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=2, dry_run=True),
            listeners=[Collect()]).run()  # type: ignore[list-item]
    assert (lab.git("status", "--porcelain"), lab.git("rev-parse", "HEAD"),
            lab.git("branch", "--show-current")) == before
    assert any("uncommitted changes" in line and "not part of the base" in line for line in lines)
    assert lab.git("show", "autoresearch/demo:model/value.txt") == "7"


def test_pushes_branch_and_record_to_the_remote_after_every_attempt(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9"], remote=True)
    run(lab, 2, dry_run=False)
    assert lab.remote is not None
    remote = Lab(lab.remote)
    assert remote.git("log", "--format=%s", "main..autoresearch/demo").splitlines() == ["set value to 8"]
    assert remote.git("rev-parse", "refs/autoresearch/demo/record") == lab.git("rev-parse",
                                                                                 "refs/autoresearch/demo/record")


def test_without_a_remote_a_real_run_says_to_use_dry_run(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8"])
    with pytest.raises(ArlError, match="no remote named 'origin'") as info:
        run(lab, 1, dry_run=False)
    assert "--dry-run" in str(info.value)


def test_two_loops_in_one_repository_keep_separate_branches_and_records(tmp_path: Path) -> None:
    first = value_config(loop="alpha")
    second = value_config(loop="beta").split("loops:\n", 1)[1]
    lab = make_lab(tmp_path, ["8"], config_text=first + second)
    for name in ("alpha", "beta"):
        Session(lab.repo, lab.config(), lab.loop(name), RunOptions(experiments=1, dry_run=True)).run()
    assert branch_log(lab, "alpha") == branch_log(lab, "beta") == ["set value to 8"]
    assert RecordStore(lab.repo, "alpha").head() != RecordStore(lab.repo, "beta").head()
