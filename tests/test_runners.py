"""Several runners on one loop: processes in separate clones share it through one bare remote, and only that."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from arl_bot import config
from arl_bot.errors import ArlError
from arl_bot.git import Git
from arl_bot.github import notes
from arl_bot.github.outputs import Order, Target
from arl_bot.github.pr import seed_branch
from arl_bot.loop import RunOptions, Session
from arl_bot.record import Record
from arl_bot.revert import revert
from arl_bot.store import RecordStore

from tests.labs import PY, Lab, git, make_lab, value_config

ARL = [sys.executable, "-m", "arl_bot.cli"]

# score = 10 - a - b - c (model/<x>.txt); each evaluation takes a little while, so runs overlap.
EVAL_SUM = textwrap.dedent("""\
    import time
    from pathlib import Path
    time.sleep(0.2)
    a, b, c = (float(Path(f"model/{name}.txt").read_text()) for name in "abc")
    print(f"score: {10 - a - b - c}")
    """)

# The next ticket (atomically, across clones and processes) picks the job: `x=v` writes model/x.txt;
# `sleep` sleeps until the runner is stopped or killed.
AGENT_JOBS = textwrap.dedent("""\
    import os, time
    from pathlib import Path
    shared = Path({shared!r})
    jobs = (shared / "jobs.txt").read_text().split()
    n = 0
    while True:
        n += 1
        try:
            os.close(os.open(shared / f"ticket-{{n}}", os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            continue
    job = jobs[(n - 1) % len(jobs)]
    (shared / f"started-{{n}}").write_text(str(os.getpid()))
    if job == "sleep":
        time.sleep(300)
    name, value = job.split("=")
    Path(f"model/{{name}}.txt").write_text(value + "\\n")
    Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text(f"ticket {{n}}: set {{name}} to {{value}}\\n")
    """)


def runners_lab(tmp_path: Path, jobs: list[str], clones: int) -> tuple[Lab, list[Path], Path]:
    """A loop whose baseline is on the remote, and `clones` fresh clones of it, one per runner."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "jobs.txt").write_text("\n".join(jobs) + "\n")
    text = value_config(budget="{experiments: 50}", agent=f'{{kind: command, command: "{PY} agent.py", timeout: 120}}')
    lab = make_lab(tmp_path, ["1"], config_text=text, remote=True, files={
        "model/a.txt": "0\n", "model/b.txt": "0\n", "model/c.txt": "0\n", "eval/run.py": EVAL_SUM,
        "agent.py": AGENT_JOBS.format(shared=str(shared))})
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
