"""Fault injection: SIGKILL at each phase of an experiment, then run again — nothing kept is lost."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from arl_bot.record import Record
from arl_bot.store import RecordStore

from tests.labs import PY, Lab, make_lab, value_config

ARL = [sys.executable, "-m", "arl_bot.cli"]

# A `git` that SIGKILLs the bot (its parent) on the Nth call whose arguments contain a pattern: the
# bot dies at exactly that point of its bookkeeping, as a runner losing power would.
KILLER = """#!/bin/sh
case "$*" in
  *"$ARL_TEST_KILL_ON"*)
    n=$(( $(cat "$ARL_TEST_COUNTER" 2>/dev/null || echo 0) + 1 ))
    echo "$n" > "$ARL_TEST_COUNTER"
    if [ "$n" -eq "$ARL_TEST_KILL_AT" ]; then
      [ "$ARL_TEST_KILL_WHEN" = after ] && {real} "$@"
      kill -9 "$PPID"; sleep 5; exit 1
    fi;;
esac
exec {real} "$@"
"""


def killer_env(tmp_path: Path, pattern: str, nth: int, when: str) -> dict[str, str]:
    bindir = tmp_path / "killer-bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / "git"
    script.write_text(KILLER.format(real=shutil.which("git")))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "ARL_TEST_KILL_ON": pattern,
            "ARL_TEST_KILL_AT": str(nth), "ARL_TEST_KILL_WHEN": when,
            "ARL_TEST_COUNTER": str(tmp_path / "killer-count")}


def run_arl(lab: Lab, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ARL, *args], cwd=lab.root, env=env, capture_output=True, text=True, timeout=120)


def check_agreement(lab: Lab) -> Record:
    """Branch, record and remote agree; no experiment number twice; every keep's SHA is on the branch."""
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    numbers = [a.experiment for a in record.attempts]
    assert numbers == sorted(set(numbers)), "an experiment was recorded twice"
    kept = [a.sha for a in record.attempts if a.status == "keep"]
    assert lab.git("log", "--format=%H", "main..autoresearch/demo").splitlines() == kept[::-1]
    assert lab.remote is not None
    remote = Lab(lab.remote)
    assert remote.git("rev-parse", "autoresearch/demo") == lab.git("rev-parse", "autoresearch/demo")
    assert remote.git("rev-parse", "refs/autoresearch/demo/record") == RecordStore(lab.repo, "demo").head()
    return record


@pytest.mark.parametrize(("pattern", "when", "survivor"), [
    # Killed while moving the branch to the new keep: the commit exists, the branch never moved.
    ("update-ref refs/heads/autoresearch/demo", "before", "interrupted"),
    # Killed after the branch moved, before the record was written: recovered from the trailers.
    ("update-ref refs/autoresearch/demo/record", "before", "keep"),
    # Killed after recording, before the push: the next run pushes both.
    ("push", "before", "keep"),
    # Killed right after the push landed, before anything else: nothing to repair.
    ("push", "after", "keep"),
])
def test_sigkill_during_bookkeeping_then_resume(tmp_path: Path, pattern: str, when: str, survivor: str) -> None:
    lab = make_lab(tmp_path, ["8", "7", "6", "5"], remote=True)
    # Which matching call belongs to experiment 2: the branch is created (1), then moved by keeps 1 and 2;
    # the record gets meta (1), run_start (2), baseline (3), 1 and 2; a push follows baseline, 1 and 2.
    nth = {"update-ref refs/heads/autoresearch/demo": 3, "update-ref refs/autoresearch/demo/record": 5,
           "push": 3}[pattern]
    dead = run_arl(lab, "run", "--experiments", "4", env=killer_env(tmp_path, pattern, nth, when))
    assert dead.returncode == -9, dead.stderr
    resumed = run_arl(lab, "run", "--experiments", "1")
    assert resumed.returncode == 0, resumed.stderr
    record = check_agreement(lab)
    by_number = {a.experiment: a for a in record.attempts}
    assert by_number[1].status == "keep" and by_number[1].metric == 8.0
    assert by_number[2].status == survivor
    if survivor == "keep":
        assert by_number[2].metric == 7.0
    assert record.attempts[-1].status == "keep"  # the resumed run went on from the right best


def test_sigkill_while_evaluating_then_resume(tmp_path: Path) -> None:
    marker = tmp_path / "evaluating"
    lab = make_lab(tmp_path, ["8", "7", "6"], remote=True)
    lab.write("eval/run.py", lab.root.joinpath("eval/run.py").read_text().replace(
        'text = Path("model/value.txt").read_text().strip()',
        'text = Path("model/value.txt").read_text().strip()\n'
        f'if text == "7" and not Path({str(marker)!r}).exists():\n'
        f'    import time; Path({str(marker)!r}).write_text("x"); time.sleep(120)'))
    lab.commit_all("slow evaluation of 7")
    proc = subprocess.Popen([*ARL, "run", "--experiments", "5"], cwd=lab.root, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=30)
    resumed = run_arl(lab, "run", "--experiments", "1")
    assert resumed.returncode == 0, resumed.stderr
    record = check_agreement(lab)
    assert [(a.experiment, a.status) for a in record.attempts] == [
        (0, "baseline"), (1, "keep"), (2, "interrupted"), (3, "keep")]
    assert "killed during this experiment" in record.attempts[2].reason


def test_two_runs_on_one_loop_never_interleave_the_record(tmp_path: Path) -> None:
    slow = ("import time, os\nfrom pathlib import Path\n"
            "Path('model/value.txt').write_text(os.environ['AUTORESEARCH_EXPERIMENT'])\ntime.sleep(0.3)\n")
    lab = make_lab(tmp_path, ["1"], files={"slow.py": slow})
    lab.write(".autoresearch.yml", value_config(agent=f'{{kind: command, command: "{PY} slow.py"}}',
                                                 goal="maximize"))
    lab.commit_all("slow agent")
    procs = [subprocess.Popen([*ARL, "run", "--dry-run", "--experiments", "3"], cwd=lab.root,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 3], results
    assert any("already running" in err for _, err in results)
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    assert [a.experiment for a in record.attempts] == [0, 1, 2, 3]


def pushing_agent(remote: Path, clone: Path, fix_path: str, fix_text: str) -> str:
    """An agent that, in experiment 2, first pushes someone's manual fix to the research branch."""
    return (
        "import os, subprocess\nfrom pathlib import Path\n"
        "n = int(os.environ['AUTORESEARCH_EXPERIMENT'])\n"
        "if n == 2:\n"
        "    g = lambda *a, cwd=None: subprocess.run(['git', '-c', 'user.name=human', '-c', "
        "'user.email=h@example.com', *a], cwd=cwd, check=True, capture_output=True)\n"
        f"    g('clone', '--quiet', '--branch', 'autoresearch/demo', {str(remote)!r}, {str(clone)!r})\n"
        f"    Path({str(clone)!r}, {fix_path!r}).write_text({fix_text!r})\n"
        f"    g('commit', '--quiet', '-am', 'manual fix', cwd={str(clone)!r})\n"
        f"    g('push', '--quiet', 'origin', 'autoresearch/demo', cwd={str(clone)!r})\n"
        "Path('model/value.txt').write_text(str(10 - n))\n"
    )


def test_a_manual_fix_pushed_mid_run_is_merged_keeping_both_then_measured(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["0"], remote=True, files={"model/notes.txt": "draft\n"})
    assert lab.remote is not None
    lab.use_agent("pusher.py", pushing_agent(lab.remote, tmp_path / "human", "model/notes.txt", "fixed\n"))
    result = run_arl(lab, "run", "--experiments", "3")
    assert result.returncode == 0, result.stderr
    assert "moved on origin" in result.stderr
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    assert [(a.experiment, a.status) for a in record.attempts] == [
        (0, "baseline"), (1, "keep"), (2, "keep"), (3, "baseline"), (4, "keep")]
    assert record.attempts[3].description.endswith("the branch moved outside the loop")
    remote = Lab(lab.remote)
    head = remote.git("rev-parse", "autoresearch/demo")
    assert head == lab.git("rev-parse", "autoresearch/demo")
    for attempt in record.attempts:
        if attempt.sha:
            remote.git("merge-base", "--is-ancestor", attempt.sha, head)  # every kept state is on the branch
    assert remote.git("show", f"{head}:model/notes.txt") == "fixed"  # the manual fix is kept too
    assert remote.git("show", f"{head}:model/value.txt") == "6"


def test_a_manual_fix_pushed_between_runs_is_measured_before_going_on(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"], remote=True)  # experiment 3 writes 7
    assert run_arl(lab, "run", "--experiments", "1").returncode == 0
    assert lab.remote is not None
    human = tmp_path / "human"
    git_env = ["-c", "user.name=human", "-c", "user.email=h@example.com"]
    subprocess.run(["git", "clone", "--quiet", "--branch", "autoresearch/demo", str(lab.remote), str(human)],
                   check=True)
    (human / "model" / "value.txt").write_text("7.5\n")
    subprocess.run(["git", *git_env, "commit", "--quiet", "-am", "hand-tuned"], cwd=human, check=True)
    subprocess.run(["git", "push", "--quiet", "origin", "autoresearch/demo"], cwd=human, check=True)
    result = run_arl(lab, "run", "--experiments", "1")
    assert result.returncode == 0, result.stderr
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    assert [(a.status, a.metric) for a in record.attempts[-2:]] == [("baseline", 7.5), ("keep", 7.0)]


def test_a_conflicting_manual_fix_stops_the_run_with_nothing_lost(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["0"], remote=True)
    assert lab.remote is not None
    lab.use_agent("pusher.py", pushing_agent(lab.remote, tmp_path / "human", "model/value.txt", "9.5\n"))
    result = run_arl(lab, "run", "--experiments", "3")
    assert result.returncode == 1
    assert "conflict with this run's kept experiments; nothing is lost" in result.stderr
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    kept = [a for a in record.attempts if a.status == "keep"]
    assert [a.metric for a in kept] == [9.0, 8.0]
    remote = Lab(lab.remote)
    side = remote.git("for-each-ref", "--format=%(refname)", "refs/autoresearch/demo/unmerged/").strip()
    assert remote.git("rev-parse", side) == kept[-1].sha
    assert remote.git("rev-parse", "refs/autoresearch/demo/record") == RecordStore(lab.repo, "demo").head()
