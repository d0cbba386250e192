"""The command line as a user runs it: real processes, real signals, fresh clones."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from arl_bot.store import RecordStore

from tests.labs import EVAL_VALUE, Lab, git, make_lab, running, value_config

ARL = [sys.executable, "-m", "arl_bot.cli"]


def arl(lab: Lab | Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cwd = lab.root if isinstance(lab, Lab) else lab
    result = subprocess.run([*ARL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"arl-bot {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def start(lab: Lab, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*ARL, *args], cwd=lab.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():  # written, not just created
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def slow_agent_lab(tmp_path: Path, *, remote: bool = False) -> tuple[Lab, Path]:
    """A lab whose agent writes a value, then signals it started and sleeps on experiment 2."""
    marker = tmp_path / "agent-started"
    agent = (
        "import os, time\nfrom pathlib import Path\n"
        "n = int(os.environ['AUTORESEARCH_EXPERIMENT'])\n"
        "Path('model/value.txt').write_text(str(10 - n))\n"
        f"if n == 2:\n    Path({str(marker)!r}).write_text(str(os.getpid()))\n    time.sleep(120)\n"
    )
    lab = make_lab(tmp_path, ["0"], remote=remote)
    lab.use_agent("slow.py", agent)
    return lab, marker


def test_dry_run_prints_the_pull_request_body_and_pushes_nothing(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "5"], remote=True)
    result = arl(lab, "run", "--dry-run", "--experiments", "3")
    assert "<!-- arl-bot:pr-body loop=demo -->" in result.stdout
    assert "| baseline | 10 |" in result.stdout and "| best | 5 (experiment 3) |" in result.stdout
    assert "experiment 1: KEEP score=8" in result.stderr
    assert lab.remote is not None
    assert Lab(lab.remote).git("for-each-ref") .count("autoresearch") == 0


def test_results_prints_the_history_as_table_json_and_tsv(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9"])
    arl(lab, "run", "--dry-run", "--experiments", "2")
    table = arl(lab, "results").stdout
    assert "baseline" in table and "keep" in table and "discard" in table and "best 8;" in table
    data = json.loads(arl(lab, "results", "--json").stdout)
    assert [a["status"] for a in data["attempts"]] == ["baseline", "keep", "discard"]
    tsv = arl(lab, "results", "--tsv").stdout.splitlines()
    assert tsv[0].split("\t")[:3] == ["experiment", "status", "metric"]
    assert tsv[2].split("\t")[:3] == ["1", "keep", "8.0"]


def test_a_fresh_clone_shows_the_whole_history_and_every_diff(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "crash"], remote=True)
    arl(lab, "run", "--experiments", "3")
    assert lab.remote is not None
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(lab.remote), str(clone))
    data = json.loads(arl(clone, "results", "--json").stdout)
    assert [a["status"] for a in data["attempts"]] == ["baseline", "keep", "discard", "crash"]
    kept_sha = data["attempts"][1]["sha"]
    assert git(clone, "rev-parse", "origin/autoresearch/demo") == kept_sha
    discarded = arl(clone, "results", "--diff", "2").stdout
    assert "-8\n+9\n" in discarded
    missing = arl(clone, "results", "--diff", "9", check=False)
    assert missing.returncode == 1 and "no experiment 9" in missing.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_at_once_records_the_attempt_and_restores_the_tree(
    tmp_path: Path, sig: signal.Signals
) -> None:
    lab, marker = slow_agent_lab(tmp_path)
    proc = start(lab, "run", "--dry-run", "--experiments", "5")
    wait_for(marker)
    agent_pid = int(marker.read_text())
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    assert [a.status for a in record.attempts] == ["baseline", "keep", "interrupted"]
    assert record.stop_reason == "interrupted by a signal"
    assert not running(agent_pid)
    tree = Lab(lab.root / ".arl-bot" / "worktrees" / "demo")
    assert tree.git("status", "--porcelain") == ""
    assert tree.git("rev-parse", "HEAD") == record.attempts[1].sha


def test_an_interrupted_evaluation_keeps_the_agents_finished_change_and_the_report_counts_it(
        tmp_path: Path) -> None:
    marker = tmp_path / "eval-started"
    slow_eval = EVAL_VALUE.replace('if text == "crash":', (
        f'if text == "slow":\n    Path({str(marker)!r}).write_text("1")\n    import time; time.sleep(120)\n'
        'if text == "crash":'))
    lab = make_lab(tmp_path, ["8", "slow"], files={"eval/run.py": slow_eval})
    proc = start(lab, "run", "--dry-run", "--experiments", "5")
    wait_for(marker)  # the agent has finished: its change is being evaluated
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    data = json.loads(arl(lab, "results", "--json").stdout)
    interrupted = data["attempts"][2]
    assert interrupted["status"] == "interrupted" and interrupted["description"] == "set value to slow"
    assert "the agent had finished" in interrupted["reason"] and interrupted["files"] == ["model/value.txt"]
    assert "+slow" in arl(lab, "results", "--diff", "2").stdout
    out = tmp_path / "report.html"
    arl(lab, "report", "-o", str(out))
    html = out.read_text()
    assert "0 invalid, 1 interrupted" in html and "no metric (crash, invalid, interrupted)" in html


def test_sigkill_mid_experiment_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    lab, marker = slow_agent_lab(tmp_path, remote=True)
    proc = start(lab, "run", "--experiments", "5")
    wait_for(marker)
    agent_pid = int(marker.read_text())
    proc.kill()
    proc.communicate(timeout=30)
    arl(lab, "run", "--experiments", "2")  # experiments 3 and 4: the agent only sleeps in experiment 2
    # Without a sandbox an orphaned grandchild can outlive the bot's SIGKILL; the next start ends it.
    assert not running(agent_pid)
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    assert [(a.experiment, a.status) for a in record.attempts] == [
        (0, "baseline"), (1, "keep"), (2, "interrupted"), (3, "keep"), (4, "keep")]
    kept = [a.sha for a in record.attempts if a.status == "keep"]
    assert lab.git("log", "--format=%H", "main..autoresearch/demo").splitlines() == kept[::-1]
    assert lab.remote is not None
    assert Lab(lab.remote).git("rev-parse", "autoresearch/demo") == kept[-1]


def test_a_kept_commit_whose_record_entry_was_lost_is_recovered_from_its_trailers(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "7"])
    arl(lab, "run", "--dry-run", "--experiments", "2")
    store = RecordStore(lab.repo, "demo")
    # Simulate a bot killed between moving the branch and writing the record: drop experiment 2's entry.
    log = lab.git("log", "--format=%H %s", store.ref).splitlines()
    entry = next(line.split()[0] for line in log if line.endswith("experiment 2: keep"))
    lab.git("update-ref", store.ref, f"{entry}~1")
    arl(lab, "run", "--dry-run", "--experiments", "1")
    record = store.load()
    assert record is not None
    assert [(a.experiment, a.status) for a in record.attempts][:3] == [(0, "baseline"), (1, "keep"), (2, "keep")]
    assert "recovered from the branch" in record.attempts[2].reason
    assert record.attempts[2].sha == lab.git("rev-parse", "autoresearch/demo~1") or record.attempts[3].status != "keep"


def test_a_second_run_on_the_same_loop_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    lab, marker = slow_agent_lab(tmp_path)
    proc = start(lab, "run", "--dry-run", "--experiments", "5")
    try:
        wait_for(marker)
        second = arl(lab, "run", "--dry-run", check=False)
        assert second.returncode == 3
        assert f"loop 'demo' is already running in this clone (pid {proc.pid})" in second.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_init_writes_starter_files_and_never_overwrites(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    out = arl(tmp_path, "init", "--loop", "charlm").stdout
    assert "wrote .autoresearch.yml" in out and "wrote AGENT.md" in out
    from arl_bot import config

    assert config.load(tmp_path / ".autoresearch.yml").loop("charlm").branch == "autoresearch/charlm"
    assert ".arl-bot/" in (tmp_path / ".gitignore").read_text()
    again = arl(tmp_path, "init", check=False)
    assert again.returncode == 1 and "already exists; nothing was written" in again.stderr


def test_eval_measures_the_checkout_and_prints_json(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8"], start="4.25")
    data = json.loads(arl(lab, "eval").stdout)
    assert data["metric"] == 4.25 and data["seeds"] == {"1": 4.25} and data["error"] is None
    lab.write("model/value.txt", "crash")
    failed = arl(lab, "eval", check=False)
    assert failed.returncode == 1 and json.loads(failed.stdout)["error"] == "exited with status 3"


def test_errors_are_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8"])
    text = value_config().replace("goal: minimize", "goal: lower")
    line = 1 + text.splitlines().index(next(x for x in text.splitlines() if "goal: lower" in x))
    lab.write(".autoresearch.yml", text)
    result = arl(lab, "run", "--dry-run", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"arl-bot: error: {lab.root / '.autoresearch.yml'}:{line}: loops.demo.metric.goal: Input should be")
    assert "Traceback" not in result.stderr


def test_a_failing_agent_says_why_on_the_console(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    missing.mkdir()
    lab = make_lab(missing, ["8"], config_text=value_config(
        agent='{kind: command, command: "no-such-agent-tool --go"}', budget="{experiments: 1}"))
    err = arl(lab, "run", "--dry-run").stderr
    line = next(s for s in err.splitlines() if "CRASH" in s)
    assert "agent exited with status 127 (command not found" in line and "no-such-agent-tool" in line
    failing = tmp_path / "failing"
    failing.mkdir()
    code = "import sys; sys.stderr.write(\\\"ValueError: learning rate must be positive\\\\n\\\"); sys.exit(2)"
    lab = make_lab(failing, ["8"], config_text=value_config(
        agent=f'{{kind: command, command: "{sys.executable} -c \'{code}\'"}}', budget="{experiments: 1}"))
    err = arl(lab, "run", "--dry-run").stderr
    line = next(s for s in err.splitlines() if "CRASH" in s)
    assert "agent exited with status 2: ValueError: learning rate must be positive" in line


def test_a_real_run_after_dry_runs_refuses_to_push_them_unless_told(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"], remote=True)
    arl(lab, "run", "--dry-run", "--experiments", "2")
    dry_id = json.loads(arl(lab, "results", "--json").stdout)["attempts"][0]["run_id"]
    refused = arl(lab, "run", "--experiments", "1", check=False)
    assert refused.returncode == 1
    assert f"3 experiments from dry runs (run id {dry_id}) would be pushed to origin" in refused.stderr
    assert "--push-dry-runs" in refused.stderr and "git update-ref -d refs/autoresearch/demo/record" in refused.stderr
    assert lab.remote is not None
    assert Lab(lab.remote).git("for-each-ref", "refs/autoresearch") == ""  # nothing was pushed
    pushed = arl(lab, "run", "--experiments", "1", "--push-dry-runs")
    assert f"pushing 3 experiments from dry runs (run id {dry_id}) to origin" in pushed.stderr
    assert Lab(lab.remote).git("rev-parse", "autoresearch/demo") == lab.git("rev-parse", "autoresearch/demo")
    again = arl(lab, "run", "--experiments", "1")  # they are on the remote now: nothing to ask
    assert "dry runs" not in again.stderr


def test_an_uncommitted_config_is_used_and_the_run_says_so(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"])
    lab.write(".autoresearch.yml", value_config(budget="{experiments: 1}"))  # edited, not committed
    result = arl(lab, "run", "--dry-run")
    assert "this run uses .autoresearch.yml as it is in your checkout, uncommitted changes included" in result.stderr
    assert "version committed on main" in result.stderr
    attempts = json.loads(arl(lab, "results", "--json").stdout)["attempts"]
    assert len(attempts) == 2  # the checkout's budget of one experiment was in force, not the committed five
    lab.commit_all("budget of one")
    assert "as it is in your checkout" not in arl(lab, "run", "--dry-run").stderr


def test_a_closed_pipe_stops_the_output_not_the_command(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9", "7"])
    # `arl-bot eval | head`: the reader is gone before the JSON is printed
    proc = subprocess.Popen([*ARL, "eval"], cwd=lab.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err
    # `arl-bot run 2>&1 | head`: progress and the PR body have nowhere to go; every experiment still runs
    proc = subprocess.Popen([*ARL, "run", "--dry-run"], cwd=lab.root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None and [a.status for a in record.attempts] == [
        "baseline", "keep", "discard", "keep", "discard", "discard"]


def test_init_scaffolds_from_what_the_repository_has_and_placeholders_fail_helpfully(tmp_path: Path) -> None:
    bare = tmp_path / "My_Project"
    bare.mkdir()
    git(bare, "init", "--quiet", "--initial-branch=main")
    out = arl(bare, "init").stdout
    assert "placeholder: editable:" in out and "placeholder: eval/run.py" in out
    text = (bare / ".autoresearch.yml").read_text()
    assert "  my-project:" in text and "PLACEHOLDER" in text  # named after the folder, never `main`
    evaluated = arl(bare, "eval", check=False)
    assert evaluated.returncode == 1
    assert "eval/run.py is a placeholder written by `arl-bot init`" in json.loads(evaluated.stdout)["log_tail"]

    lab = tmp_path / "lab"
    (lab / "eval").mkdir(parents=True)
    (lab / "model.py").write_text("WIDTH = 3\n")
    (lab / "eval" / "run.py").write_text("print('val_loss: 1.0')\n")
    git(lab, "init", "--quiet", "--initial-branch=main")
    out = arl(lab, "init", "--loop", "fit").stdout
    assert "placeholder" not in out
    text = (lab / ".autoresearch.yml").read_text()
    assert 'editable: ["model.py"]' in text and "PLACEHOLDER" not in text
    assert (lab / "eval" / "run.py").read_text() == "print('val_loss: 1.0')\n"  # the user's own, untouched


def test_small_things_in_results_read_as_meant(tmp_path: Path) -> None:
    from datetime import datetime

    from tests.noisy_lab import noisy_config, noisy_lab

    log = tmp_path / "eval.log"
    lab = noisy_lab(tmp_path, ["9.9"], noisy_config(
        seeds="[1]", budget="{experiments: 1}", command=f"{sys.executable} eval/run.py --seed {{seed}} --log {log}"))
    ran = arl(lab, "run", "--dry-run")
    assert "demo: 2 attempts this run" in ran.stderr
    attempts = json.loads(arl(lab, "results", "--json").stdout)["attempts"]
    began = datetime.strptime(attempts[0]["started_at"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() - time.timezone
    first_eval = float(log.read_text().split()[1])
    assert began <= first_eval  # the baseline's started_at is when it began, not when its evaluation ended
    delta = attempts[1]["metric"] - attempts[0]["metric"]
    tsv = arl(lab, "results", "--format", "tsv").stdout.splitlines()[2].split("\t")
    assert tsv[3] == f"{delta:.12g}" and len(tsv[3]) <= 16  # not the float's rounding error
    baseline = arl(lab, "results", "--diff", "0")
    assert baseline.stdout == "" and "experiment 0 is a baseline: it measured the branch as it was" in baseline.stderr
    assert "demo: 1 attempt this run" in arl(lab, "run", "--dry-run").stderr  # the baseline stands
