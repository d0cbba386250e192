"""Several runners on one loop: processes in separate clones share it through one bare remote, and only that."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arl_bot import config, names
from arl_bot.errors import ArlError
from arl_bot.git import Git
from arl_bot.github import notes
from arl_bot.github.outputs import Order, Target
from arl_bot.github.pr import seed_branch
from arl_bot.loop import RunOptions, RunSummary, Session
from arl_bot.record import Record
from arl_bot.revert import revert
from arl_bot.store import RecordStore

from tests.labs import PY, Lab, git, make_lab, ticket_agent, value_config

ARL = [sys.executable, "-m", "arl_bot.cli"]

# score = 10 - a - b - c (model/<x>.txt); each evaluation takes a little while, so runs overlap.
EVAL_SUM = textwrap.dedent("""\
    import time
    from pathlib import Path
    time.sleep(0.2)
    a, b, c = (float(Path(f"model/{name}.txt").read_text()) for name in "abc")
    print(f"score: {10 - a - b - c}")
    """)


def runners_lab(tmp_path: Path, jobs: list[str], clones: int) -> tuple[Lab, list[Path], Path]:
    """A loop whose baseline is on the remote, and `clones` fresh clones of it, one per runner."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "jobs.txt").write_text("\n".join(jobs) + "\n")
    text = value_config(budget="{experiments: 50}", agent=f'{{kind: command, command: "{PY} agent.py", timeout: 120}}')
    lab = make_lab(tmp_path, ["1"], config_text=text, remote=True, files={
        "model/a.txt": "0\n", "model/b.txt": "0\n", "model/c.txt": "0\n", "eval/run.py": EVAL_SUM,
        "agent.py": ticket_agent(shared)})
    started = subprocess.run([*ARL, "run", "--experiments", "0"], cwd=lab.root, capture_output=True, text=True,
                             timeout=120)
    assert started.returncode == 0, started.stderr  # the baseline, pushed: the runners join a running loop
    assert lab.remote is not None
    roots = []
    for index in range(clones):
        root = tmp_path / f"runner-{index}"
        git(tmp_path, "clone", "--quiet", str(lab.remote), str(root))
        roots.append(root)
    return lab, roots, shared


def final_record(tmp_path: Path, remote: Path) -> Record:
    """The record as the remote has it, read through a fresh clone."""
    check = tmp_path / "check"
    git(tmp_path, "clone", "--quiet", str(remote), str(check))
    record = notes.load(Git(check), "demo")
    assert record is not None
    return record


def check_shared_record(tmp_path: Path, lab: Lab, record: Record) -> None:
    """Numbers unique and contiguous; keeps improve on each other; each keep's metric is its own tree's."""
    assert [a.experiment for a in record.attempts] == list(range(len(record.attempts)))
    assert lab.remote is not None
    remote = Lab(lab.remote)
    kept = [a for a in record.attempts if a.status in ("baseline", "keep")]
    for before, after in itertools.pairwise(kept):
        assert after.metric is not None and before.metric is not None and after.metric < before.metric
        assert remote.git("rev-parse", f"{after.sha}^") == before.sha  # a straight line of keeps
    for attempt in kept[1:]:
        a, b, c = (float(remote.git("show", f"{attempt.sha}:model/{name}.txt")) for name in "abc")
        assert attempt.metric == 10 - a - b - c
    assert remote.git("rev-parse", "autoresearch/demo") == kept[-1].sha


def test_two_runners_on_one_loop_lose_nothing_and_number_everything_once(tmp_path: Path) -> None:
    jobs = ["a=1", "b=1", "c=1", "a=2", "b=2", "c=2", "a=3", "b=3"]
    lab, roots, shared = runners_lab(tmp_path, jobs, clones=2)
    procs = [subprocess.Popen([*ARL, "run", "--experiments", "4", "--progress", "plain"], cwd=root,
                              stderr=subprocess.PIPE, text=True) for root in roots]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], "\n\n".join(errors)
    assert lab.remote is not None
    record = final_record(tmp_path, lab.remote)
    check_shared_record(tmp_path, lab, record)
    experiments = [a for a in record.attempts if a.status != "baseline"]
    assert len(experiments) == 8 and len(list(shared.glob("ticket-*"))) == 8  # none lost, none twice
    assert all("4 attempts this run" in said for said in errors)  # each runner recorded its own four
    assert sorted(a.description.split(":")[0] for a in experiments) == sorted(f"ticket {n}" for n in range(1, 9))


def test_sigkill_of_one_runner_loses_nothing_and_the_other_goes_on(tmp_path: Path) -> None:
    lab, roots, shared = runners_lab(tmp_path, ["sleep", "a=1", "b=1", "c=1"], clones=2)
    killed = subprocess.Popen([*ARL, "run", "--experiments", "1", "--progress", "plain"], cwd=roots[0],
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not (shared / "started-1").exists():  # the first runner's agent took the sleeping ticket
        assert time.monotonic() < deadline and killed.poll() is None
        time.sleep(0.05)
    other = subprocess.run([*ARL, "run", "--experiments", "2"], cwd=roots[1], capture_output=True, text=True,
                           timeout=300)
    assert other.returncode == 0, other.stderr
    killed.kill()
    killed.communicate(timeout=30)
    resumed = subprocess.run([*ARL, "run", "--experiments", "1"], cwd=roots[0], capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert lab.remote is not None
    record = final_record(tmp_path, lab.remote)
    check_shared_record(tmp_path, lab, record)
    statuses = [a.status for a in record.attempts]
    assert statuses.count("interrupted") == 1 and len(statuses) == 5  # baseline, 2 + 1 experiments, the killed one
    interrupted = next(a for a in record.attempts if a.status == "interrupted")
    assert "killed during this experiment" in interrupted.reason


@pytest.mark.unit
def test_the_gate_starts_one_research_job_per_runner_each_in_its_own_group() -> None:
    loop = config.parse(value_config().rstrip("\n") + "\n    runners: 3\n").loops["demo"]
    order = Order(run=True, targets=(Target("demo", ("gpu",), loop.runners),), command="continue")
    assert json.loads(order.outputs()["loops"]) == [
        {"loop": "demo", "runner": ["gpu"]},  # the first keeps the loop's own concurrency group
        {"loop": "demo", "runner": ["gpu"], "shard": 1}, {"loop": "demo", "runner": ["gpu"], "shard": 2}]
    revert = Order(run=True, targets=(Target("demo", ("gpu",), 3),), command="revert", experiment=4)
    assert len(json.loads(revert.outputs()["loops"])) == 1  # one change: one job
    job = Order.from_env({"ARL_LOOP": "demo", "ARL_SHARD": "2"})
    assert job.shard == 2 and Order.from_env({"ARL_LOOP": "demo", "ARL_SHARD": ""}).shard == 0
    with pytest.raises(ArlError, match="ARL_SHARD"):
        Order.from_env({"ARL_LOOP": "demo", "ARL_SHARD": "1; rm"})


# A `git` whose pushes, once experiment 1's agent has armed it, wait until experiment 2's agent opens it:
# a run that pushed before starting the next experiment would wait for ever (and this records that).
SLOW_REMOTE = """#!/bin/sh
case "$*" in
  *" push "*)
    if [ -e "$ARL_TEST_GATE/armed" ]; then
      i=0
      while [ ! -e "$ARL_TEST_GATE/open" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
      [ -e "$ARL_TEST_GATE/open" ] || touch "$ARL_TEST_GATE/timed-out"
    fi;;
esac
exec {real} "$@"
"""
GATE_AGENT = textwrap.dedent("""\
    import os
    from pathlib import Path
    gate = Path(os.environ["ARL_TEST_GATE"])
    n = int(os.environ["AUTORESEARCH_EXPERIMENT"])
    (gate / ("armed" if n == 1 else "open")).touch()
    Path("model/value.txt").write_text(f"{{20 + n}}\\n")  # worse: a discard, pushed behind
    Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text(f"try {{n}}\\n")
    """)


def test_a_push_never_stands_between_two_experiments(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    bindir = tmp_path / "slow-bin"
    bindir.mkdir()
    (bindir / "git").write_text(SLOW_REMOTE.format(real=shutil.which("git")))
    (bindir / "git").chmod(0o755)
    text = value_config(agent=f'{{kind: command, command: "{PY} agent.py", timeout: 60, pass_env: [ARL_TEST_GATE]}}')
    lab = make_lab(tmp_path, ["1"], config_text=text, remote=True, files={"agent.py": GATE_AGENT.format()})
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "ARL_TEST_GATE": str(gate)}
    done = subprocess.run([*ARL, "run", "--experiments", "2"], cwd=lab.root, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (gate / "timed-out").exists(), "experiment 1's push held up experiment 2"
    assert lab.remote is not None
    record = final_record(tmp_path, lab.remote)
    assert [(a.experiment, a.status) for a in record.attempts] == [(0, "baseline"), (1, "discard"), (2, "discard")]


def test_two_jobs_seeding_a_new_loop_s_branch_at_once_both_go_on(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # `runners: 2` on a loop's first run: both jobs seed its branch; the second's push is refused.
    lab = make_lab(tmp_path, ["8"], remote=True)
    assert lab.remote is not None
    theirs = lab.git("commit-tree", "-p", "main", "-m", "autoresearch: start loop demo", "main^{tree}")
    lab.git("push", "--quiet", "origin", f"{theirs}:refs/heads/seeded-elsewhere")
    bindir = tmp_path / "race-bin"
    bindir.mkdir()
    (bindir / "git").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$*" in
          *" push "*autoresearch/demo*)  # the other job's seed lands first
            {shutil.which("git")} --git-dir={lab.remote} update-ref refs/heads/autoresearch/demo {theirs};;
        esac
        exec {shutil.which("git")} "$@"
        """))
    (bindir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    assert seed_branch(lab.repo, lab.loop()) is False
    assert lab.repo.rev("refs/heads/autoresearch/demo") == theirs  # theirs, taken in; ours dropped


def test_a_revert_that_loses_the_push_to_another_runner_s_keep_records_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab(tmp_path, ["8", "7"], remote=True)
    assert lab.remote is not None
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=2)).run()  # keeps 8, then 7
    head = lab.git("rev-parse", "autoresearch/demo")
    # Another runner's keep, on the remote's head, lands while the revert is being measured.
    lab.write("model/value.txt", "6\n")
    lab.git("add", "model/value.txt")
    tree = lab.git("write-tree")
    lab.git("reset", "--quiet", "--hard", "HEAD")
    theirs = lab.git("commit-tree", tree, "-p", head, "-m", "theirs\n\nAutoresearch-Experiment: 3")
    lab.git("push", "--quiet", "origin", f"{theirs}:refs/heads/elsewhere")
    bindir = tmp_path / "race-bin"
    bindir.mkdir()
    flag = tmp_path / "race-once"
    flag.touch()
    (bindir / "git").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$*" in
          *" push "*autoresearch/demo*)
            if [ -e {flag} ]; then
              rm {flag}
              {shutil.which("git")} --git-dir={lab.remote} update-ref refs/heads/autoresearch/demo {theirs}
            fi;;
        esac
        exec {shutil.which("git")} "$@"
        """))
    (bindir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    with pytest.raises(ArlError, match=r"another runner kept a change .* while this revert was being measured"):
        revert(Session(lab.repo, lab.config(), lab.loop(), RunOptions()), 2)
    after = RecordStore(lab.repo, "demo").load()
    assert after is not None
    assert not [a for a in after.attempts if a.mode == "revert"]  # nothing of the revert recorded
    assert lab.repo.rev("refs/heads/autoresearch/demo") == theirs  # the other runner's keep is the branch
    assert Lab(lab.remote).git("rev-parse", "autoresearch/demo") == theirs


# The first evaluation in each clone waits until every runner has arrived at its own (a barrier across
# clones): both runners have then found no record and measure a baseline, so their baselines really race.
EVAL_BARRIER = textwrap.dedent("""\
    import hashlib, os, time
    from pathlib import Path
    shared = Path({shared!r})
    (shared / ("arrived-" + hashlib.sha1(os.getcwd().encode()).hexdigest()[:12])).touch()
    deadline = time.monotonic() + 120
    while len(list(shared.glob("arrived-*"))) < {runners} and time.monotonic() < deadline:
        time.sleep(0.05)
    if len(list(shared.glob("arrived-*"))) < {runners}:
        (shared / "barrier-timed-out").touch()
    a, b, c = (float(Path(f"model/{{name}}.txt").read_text()) for name in "abc")
    print(f"score: {{10 - a - b - c}}")
    """)


def new_loop_lab(tmp_path: Path, jobs: list[str], clones: int) -> tuple[Lab, list[Path], Path]:
    """A loop that has never run (no record, no branch on the remote), and `clones` fresh clones of it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "jobs.txt").write_text("\n".join(jobs) + "\n")
    text = value_config(budget="{experiments: 50}", agent=f'{{kind: command, command: "{PY} agent.py", timeout: 120}}')
    lab = make_lab(tmp_path, ["1"], config_text=text, remote=True, files={
        "model/a.txt": "0\n", "model/b.txt": "0\n", "model/c.txt": "0\n",
        "eval/run.py": EVAL_BARRIER.format(shared=str(shared), runners=clones),
        "agent.py": ticket_agent(shared)})
    roots = []
    for index in range(clones):
        root = tmp_path / f"runner-{index}"
        git(tmp_path, "clone", "--quiet", str(lab.remote), str(root))
        roots.append(root)
    return lab, roots, shared


def test_two_runners_starting_a_new_loop_together_record_one_baseline(tmp_path: Path) -> None:
    jobs = ["a=1", "b=1", "c=1", "a=2", "b=2", "c=2"]
    lab, roots, shared = new_loop_lab(tmp_path, jobs, clones=2)
    procs = [subprocess.Popen([*ARL, "run", "--experiments", "3", "--progress", "plain"], cwd=root,
                              stderr=subprocess.PIPE, text=True) for root in roots]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], "\n\n".join(errors)
    assert not (shared / "barrier-timed-out").exists()  # both measured a baseline: they really raced
    assert lab.remote is not None
    record = final_record(tmp_path, lab.remote)
    check_shared_record(tmp_path, lab, record)
    assert [a.status for a in record.attempts].count("baseline") == 1  # theirs, not a second one renumbered
    assert record.attempts[0].status == "baseline" and record.attempts[0].sha == lab.git("rev-parse", "main")
    experiments = record.attempts[1:]
    assert len(experiments) == 6 and len(list(shared.glob("ticket-*"))) == 6  # none lost, none twice
    assert sorted(a.description.split(":")[0] for a in experiments) == sorted(f"ticket {n}" for n in range(1, 7))
    # The loser says what became of its measurement; each runner ran its three experiments.
    said = [e for e in errors if "another runner recorded the baseline of" in e]
    assert len(said) == 1, "\n\n".join(errors)
    assert "this run measured 10.0 and does not record it a second time; experiments go on from theirs" in said[0]
    assert all("3 attempts this run" in e for e in said) and all("attempts this run" in e for e in errors)
    runs = {a.run_id for a in experiments}
    assert len(runs) == 2 and all(sum(a.run_id == run for a in experiments) == 3 for run in runs)


# An agent that writes $ARL_TEST_VALUE: each runner (or each run) of a test chooses its own change.
AGENT_ENV = textwrap.dedent("""\
    import os
    from pathlib import Path
    value = os.environ["ARL_TEST_VALUE"]
    Path("model/value.txt").write_text(value + "\\n")
    Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text(f"set value to {value}\\n")
    """)


def refs_of(remote: Path) -> tuple[str, str]:
    """(research branch, record) on the remote."""
    return (Lab(remote).git("rev-parse", "refs/heads/autoresearch/demo"),
            Lab(remote).git("rev-parse", "refs/autoresearch/demo/record"))


def others_push_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: Path,
                      states: list[tuple[str, str]]) -> None:
    """Before each of this process's next pushes of the loop, the remote moves to the next state (branch,
    record) another runner reached: every one of those pushes is refused, the last one's retry lands."""
    bindir = tmp_path / "race-bin"
    bindir.mkdir()
    steps = tmp_path / "race-steps"
    steps.mkdir()
    for index, (branch, record) in enumerate(states):
        (steps / f"{index}").write_text(f"{branch} {record}\n")
    real = shutil.which("git")
    (bindir / "git").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$*" in
          *" push "*autoresearch/demo*)
            next=$(ls {steps} | sort -n | head -n 1)
            if [ -n "$next" ]; then
              read branch record < {steps}/$next
              rm {steps}/$next
              {real} --git-dir={remote} update-ref refs/heads/autoresearch/demo $branch
              {real} --git-dir={remote} update-ref refs/autoresearch/demo/record $record
            fi;;
        esac
        exec {real} "$@"
        """))
    (bindir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")


def other_runner_states(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lab: Lab,
                        values: list[str]) -> list[tuple[str, str]]:
    """What the remote holds after each of another runner's experiments (one value each); then the remote
    is put back where it was, so those states land while this runner pushes (others_push_first)."""
    assert lab.remote is not None
    before = refs_of(lab.remote)
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(lab.remote), str(other))
    states = []
    for value in values:
        monkeypatch.setenv("ARL_TEST_VALUE", value)
        Session(Git(other), lab.config(), lab.loop(), RunOptions(experiments=1, run_id="theirs")).run()
        states.append(refs_of(lab.remote))
    for ref, sha in zip(("refs/heads/autoresearch/demo", "refs/autoresearch/demo/record"), before, strict=True):
        Lab(lab.remote).git("update-ref", ref, sha)
    return states


def env_lab(tmp_path: Path, *, started: bool = True) -> Lab:
    """A value lab whose agent writes $ARL_TEST_VALUE; started: its baseline (10) is on the remote."""
    text = value_config(agent=f'{{kind: command, command: "{PY} agent.py", timeout: 30, pass_env: [ARL_TEST_VALUE]}}')
    lab = make_lab(tmp_path, ["1"], config_text=text, remote=True, files={"agent.py": AGENT_ENV})
    if started:
        Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=0)).run()
    return lab


def another_runner_starts_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lab: Lab) -> list[tuple[str, str]]:
    """Another runner starts the loop at the same moment, measures its baseline and keeps 5; the remote is put
    back empty, and what it pushed lands just before this runner's first push (others_push_first)."""
    assert lab.remote is not None
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(lab.remote), str(other))
    monkeypatch.setenv("ARL_TEST_VALUE", "5")
    Session(Git(other), lab.config(), lab.loop(), RunOptions(experiments=1, run_id="theirs")).run()
    states = [refs_of(lab.remote)]
    Lab(lab.remote).git("update-ref", "-d", "refs/heads/autoresearch/demo")
    Lab(lab.remote).git("update-ref", "-d", "refs/autoresearch/demo/record")
    return states


def ours_after_theirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lab: Lab, states: list[tuple[str, str]],
                      value: str) -> tuple[Session, RunSummary, Record]:
    """This runner's one experiment (its agent writes value), each of its pushes beaten by the next of states;
    the session, what its run returned, and the record on the remote."""
    assert lab.remote is not None
    others_push_first(tmp_path, monkeypatch, lab.remote, states)
    monkeypatch.setenv("ARL_TEST_VALUE", value)
    session = Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, run_id="ours"))
    summary = session.run()
    return session, summary, final_record(tmp_path, lab.remote)


def test_an_attempt_renumbered_by_two_refused_pushes_is_found_under_its_last_number(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = env_lab(tmp_path)
    assert lab.remote is not None
    # Another runner records two discards, each landing just before one of our keep's pushes: ours is
    # renumbered 1 -> 2, then 2 -> 3 (once the journal took experiment 2, theirs, for ours).
    states = other_runner_states(tmp_path, monkeypatch, lab, ["12", "13"])
    _, summary, record = ours_after_theirs(tmp_path, monkeypatch, lab, states, "7")
    ours = summary.attempts[-1]
    assert (ours.experiment, ours.status, ours.run_id, ours.description) == (3, "keep", "ours", "set value to 7")
    assert [(a.experiment, a.status, a.run_id) for a in record.attempts[1:]] == [
        (1, "discard", "theirs"), (2, "discard", "theirs"), (3, "keep", "ours")]
    assert Lab(lab.remote).git("log", "-1", "--format=%(trailers:key=Autoresearch-Experiment,valueonly)",
                               "autoresearch/demo") == "3"


def test_a_keep_renumbered_then_beaten_by_another_runner_s_keep_is_measured_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = env_lab(tmp_path)
    assert lab.remote is not None
    # Our keep's first push loses to their discard (ours renumbered: a new commit for the new trailer), its
    # second to their keep: the keep, under its new commit, comes off the branch and is measured again.
    states = other_runner_states(tmp_path, monkeypatch, lab, ["12", "5"])
    _, summary, record = ours_after_theirs(tmp_path, monkeypatch, lab, states, "7")
    assert [(a.experiment, a.status, a.run_id) for a in record.attempts[1:]] == [
        (1, "discard", "theirs"), (2, "keep", "theirs"), (3, "discard", "ours")]
    ours = record.attempts[3]
    assert "stale best: experiment 2" in ours.reason and summary.attempts[-1].experiment == 3
    assert Lab(lab.remote).git("rev-parse", "autoresearch/demo") == record.attempts[2].sha == \
        lab.repo.rev("refs/heads/autoresearch/demo")


def test_a_runner_whose_new_loop_lost_the_race_goes_on_from_the_winner_s_baseline_and_keeps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = env_lab(tmp_path, started=False)
    # Theirs reaches the remote before our baseline's push, on a record ours has no commit in common with.
    states = another_runner_starts_the_loop(tmp_path, monkeypatch, lab)
    session, summary, record = ours_after_theirs(tmp_path, monkeypatch, lab, states, "7")
    assert [(a.experiment, a.status, a.run_id) for a in record.attempts] == [
        (0, "baseline", "theirs"), (1, "keep", "theirs"), (2, "discard", "ours")]  # one baseline: theirs
    assert [a.run_id for a in summary.attempts] == ["ours"]  # theirs is not counted as this run's
    assert "set value to 7" in record.attempts[2].description and record.attempts[2].parent == record.attempts[1].sha
    assert any("another runner recorded the baseline of" in w and "this run measured 10.0" in w
               for w in session.warnings), session.warnings
    assert any("took in experiment 1, kept by another runner" in w for w in session.warnings), session.warnings
    assert [n.kind for n in record.notes] == ["run_start", "run_end", "run_start", "run_end"]  # ours kept too


@pytest.mark.unit
def test_run_ids_made_in_the_same_second_differ_and_sort_by_their_start() -> None:
    second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ids = [names.run_id(second) for _ in range(1000)]  # every runner of a `runners: N` matrix starting at once
    assert len(set(ids)) == 1000
    assert all(re.fullmatch(r"20260102T030405Z-[0-9a-f]{6}", i) for i in ids), ids[:3]
    later = [names.run_id(second + timedelta(seconds=1)) for _ in range(100)]
    assert max(ids) < min(later)  # sorted as text, they are in order of their start
    assert datetime.strptime(names.run_id().split("-")[0], names.RUN_ID).replace(tzinfo=UTC) <= datetime.now(UTC)


def test_a_baseline_never_pushed_is_dropped_on_the_next_start_when_another_runner_s_holds_the_same_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab(tmp_path, ["8"], remote=True)
    assert lab.remote is not None
    bindir = tmp_path / "down-bin"
    bindir.mkdir()
    (bindir / "git").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$*" in
          *" push "*) echo "fatal: unable to access 'origin': Could not resolve host" >&2; exit 128;;
        esac
        exec {shutil.which("git")} "$@"
        """))
    (bindir / "git").chmod(0o755)
    with monkeypatch.context() as offline:  # the remote is out of reach: the baseline stays in this clone
        offline.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
        with pytest.raises(ArlError):
            Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=0, run_id="ours")).run()
    mine = RecordStore(lab.repo, "demo").load()
    assert mine is not None and [a.status for a in mine.attempts] == ["baseline"]
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(lab.remote), str(other))
    Session(Git(other), lab.config(), lab.loop(), RunOptions(experiments=0, run_id="theirs")).run()
    session = Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, run_id="ours-again"))
    session.run()
    record = final_record(tmp_path, lab.remote)
    assert [(a.status, a.run_id) for a in record.attempts] == [("baseline", "theirs"), ("keep", "ours-again")]
    assert any("the baseline this clone recorded as experiment 0 (10.0) never reached origin, and another "
               "runner's baseline (experiment 0) reached it first: theirs stands" in w
               for w in session.warnings), session.warnings


def test_two_runners_re_measuring_a_branch_moved_by_hand_record_one_re_measure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = env_lab(tmp_path)
    assert lab.remote is not None
    fix = tmp_path / "fix"  # someone pushes a fix to the research branch: every runner re-measures it
    git(tmp_path, "clone", "--quiet", "--branch", "autoresearch/demo", str(lab.remote), str(fix))
    (fix / "model" / "value.txt").write_text("9\n")
    git(fix, "commit", "--quiet", "-am", "a fix by hand")
    git(fix, "push", "--quiet", "origin", "autoresearch/demo")
    moved = git(fix, "rev-parse", "HEAD")
    # The other runner re-measures it and records a discard before our re-measure's push.
    states = other_runner_states(tmp_path, monkeypatch, lab, ["12"])
    session, _, record = ours_after_theirs(tmp_path, monkeypatch, lab, states, "8")
    assert [(a.experiment, a.status, a.sha == moved, a.run_id) for a in record.attempts[1:]] == [
        (1, "baseline", True, "theirs"), (2, "discard", False, "theirs"), (3, "keep", False, "ours")]
    assert any(f"another runner recorded the baseline of {moved[:8]} first: experiment 1" in w
               for w in session.warnings), session.warnings


def test_a_runner_whose_new_loop_lost_the_race_from_a_newer_base_takes_the_winner_s_base(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = env_lab(tmp_path, started=False)
    assert lab.remote is not None
    base = lab.git("rev-parse", "main")
    states = another_runner_starts_the_loop(tmp_path, monkeypatch, lab)  # the winner started from main as it was
    lab.write("model/value.txt", "11\n")  # main moved before this runner started: its base is a newer commit
    lab.commit_all("main moved")
    newer = lab.git("rev-parse", "main")
    session, _, record = ours_after_theirs(tmp_path, monkeypatch, lab, states, "7")
    assert [(a.experiment, a.status, a.run_id) for a in record.attempts] == [
        (0, "baseline", "theirs"), (1, "keep", "theirs"), (2, "discard", "ours")]  # their loop, their base
    assert record.meta.base_sha == base == record.attempts[0].sha
    remote = Lab(lab.remote)
    assert remote.git("rev-parse", "autoresearch/demo") == record.attempts[1].sha
    assert newer not in remote.git("rev-list", "autoresearch/demo").split()  # main's new commit is not in the loop
    assert any("another runner recorded the baseline of" in w and f"this run measured 11.0 on {newer[:8]}" in w
               for w in session.warnings), session.warnings
