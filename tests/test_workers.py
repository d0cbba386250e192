"""Many experiments in flight on one loop: workers, device slots, stale keeps, numbering, signals and SIGKILL."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from arl_bot import config, decide, prbody, report, results, workers_view
from arl_bot.cli import build_parser
from arl_bot.errors import ConfigError
from arl_bot.journal import InFlight
from arl_bot.loop import RunOptions, RunSummary, Session
from arl_bot.progress import GitHubPrinter, StatusLine
from arl_bot.record import Attempt, Meta, Note, Record
from arl_bot.runview import RunView
from arl_bot.scheduler import allowance, start_reason
from arl_bot.slots import Slot, SlotPool, slots_for
from arl_bot.store import RecordStore

from tests.labs import PY, Lab, make_lab, running, ticket_agent, value_config

ARL = [sys.executable, "-m", "arl_bot.cli"]

# An evaluation that holds its device exclusively while it runs: a second evaluation on the same device
# finds the flag file and crashes, so "two evaluations never share a GPU" is counted, not timed.
# score = 10 - a - b - c (model/<x>.txt), plus 5 when a and c are both set: two workers' changes to a and
# b add up when combined; a change to c alone helps, but not on top of a.
EVAL_SLOT = textwrap.dedent("""\
    import os, sys, time
    from pathlib import Path
    shared = Path({shared!r})
    device = os.environ.get("CUDA_VISIBLE_DEVICES", "none")
    assert os.environ.get("AUTORESEARCH_DEVICE", "none") == device
    flag = shared / f"busy-{{device}}"
    try:
        fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        print(f"device {{device}} is in use by another evaluation")
        sys.exit(4)
    try:
        with open(shared / f"used-{{device}}", "a") as log:
            log.write("x")
        time.sleep({hold})
        a, b, c = (float(Path(f"model/{{name}}.txt").read_text()) for name in "abc")
        print(f"score: {{10 - a - b - c + (5 if a and c else 0)}}")
    finally:
        os.close(fd)
        os.unlink(flag)
    """)


def slot_lab(tmp_path: Path, jobs: list[str], *, workers: int, devices: str = "[0, 1]", hold: float = 0.2,
             budget: str = "{experiments: 4}", remote: bool = False) -> tuple[Lab, Path]:
    """A lab whose agent does `jobs` in ticket order and whose evaluation holds its device exclusively."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "jobs.txt").write_text("\n".join(jobs) + "\n")
    text = loop_config(f"workers: {workers}", f"devices: {devices}", budget=budget,
                       agent=f'{{kind: command, command: "{PY} agent.py", timeout: 120}}')
    root = tmp_path / "lab"
    lab = make_lab(tmp_path, ["1"], config_text=text, remote=remote, files={
        "model/a.txt": "0\n", "model/b.txt": "0\n", "model/c.txt": "0\n",
        "eval/run.py": EVAL_SLOT.format(shared=str(shared), hold=hold),
        "agent.py": ticket_agent(shared, root)})
    return lab, shared


def loop_config(*keys: str, **options: str) -> str:
    """value_config with more keys of the loop, one a line."""
    return value_config(**options).rstrip("\n") + "\n" + "".join(f"    {key}\n" for key in keys)


def run(lab: Lab, experiments: int | None = None, **options: object) -> RunSummary:
    opts = RunOptions(experiments=experiments, dry_run=bool(options.pop("dry_run", True)), **options)  # type: ignore[arg-type]
    return Session(lab.repo, lab.config(), lab.loop(), opts).run()


def check_numbers(record: Record) -> None:
    """Numbers are unique and contiguous from 0, and the record's order is their order."""
    assert [a.experiment for a in record.attempts] == list(range(len(record.attempts)))


# -- the contract: config, CLI, slots, budgets ---------------------------------------------------------
@pytest.mark.unit
def test_workers_and_devices_are_read_and_checked() -> None:
    loop = config.parse(loop_config("workers: 4", "devices: [0, GPU-5e3a]")).loops["demo"]
    assert loop.workers == 4 and loop.devices == ["0", "GPU-5e3a"]
    default = config.parse(value_config()).loops["demo"]
    assert default.workers == 1 and default.devices is None
    for bad, words in [("devices: ['0,1']", "is not one device"), ("devices: [0, 0]", "must be distinct"),
                       ("workers: 0", "greater than or equal to 1"), ("devices: []", "at least 1")]:
        with pytest.raises(ConfigError, match=words):
            config.parse(loop_config(bad))


@pytest.mark.unit
def test_the_cli_flag_overrides_workers_and_refuses_nonsense(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["run", "--workers", "3"]).workers == 3
    assert build_parser().parse_args(["run"]).workers is None
    for bad in ("0", "x", "65"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["run", "--workers", bad])
        assert "--workers" in capsys.readouterr().err


@pytest.mark.unit
def test_slots_come_from_the_config_else_the_visible_gpus_else_one_cpu_slot(tmp_path: Path) -> None:
    loop = config.parse(loop_config("devices: [2, 3]")).loops["demo"]
    assert slots_for(loop, {}) == [Slot(0, "2"), Slot(1, "3")]
    assert Slot(1, "3").env == {"CUDA_VISIBLE_DEVICES": "3", "AUTORESEARCH_DEVICE": "3"}
    plain = config.parse(value_config()).loops["demo"]
    assert slots_for(plain, {"CUDA_VISIBLE_DEVICES": "4,6"}) == [Slot(0, "4"), Slot(1, "6")]
    gpus = tmp_path / "gpus"
    for name in ("0000:01:00.0", "0000:02:00.0"):
        (gpus / name).mkdir(parents=True)
    assert slots_for(plain, {}, gpus) == [Slot(0, "0"), Slot(1, "1")]
    # No GPU anywhere: one slot, and an evaluation in it gets no device variable at all.
    assert slots_for(plain, {}, tmp_path / "none") == [Slot(0, None)]
    assert slots_for(plain, {"CUDA_VISIBLE_DEVICES": ""}, gpus) == [Slot(0, None)]
    assert Slot(0, None).env == {}


@pytest.mark.unit
def test_experiments_in_flight_count_against_the_budgets() -> None:
    loop = config.parse(value_config(budget="{experiments: 5, cost_usd: 1.0}")).loops["demo"]
    state = decide.RunState(experiments=3, cost_usd=0.5, dearest_usd=0.2)
    assert start_reason(loop.budget, loop.metric, state, 10.0, None, 1) is None
    # Two in flight: 3 + 2 reach the experiment budget before a sixth could start.
    assert "ran 5 of 5" in str(start_reason(loop.budget, loop.metric, state, 10.0, None, 2))
    # The cost cap: 0.5 spent and one in flight that may cost 0.2; a further agent could leave 1.0 unpaid.
    costly = decide.RunState(experiments=1, cost_usd=0.5, dearest_usd=0.2)
    assert start_reason(loop.budget, loop.metric, costly, 10.0, None, 1) is None
    assert "cost" in str(start_reason(loop.budget, loop.metric, costly, 10.0, None, 2))
    # An agent's own limit leaves room for the others in flight, each as dear as the dearest so far.
    assert allowance(loop.budget, costly, 0) == pytest.approx(0.5)
    assert allowance(loop.budget, costly, 2) == pytest.approx(0.1)
    assert allowance(loop.budget, costly, 3) == 0.0
    unlimited = config.parse(value_config()).loops["demo"].budget
    assert allowance(unlimited, costly, 3) is None


# -- in one process: real workers, real git, real evaluations ---------------------------------------------
@pytest.mark.parametrize("pushing", [False, True], ids=["dry-run", "pushing"])
def test_workers_share_device_slots_never_a_device_and_numbers_stay_contiguous(tmp_path: Path,
                                                                               pushing: bool) -> None:
    lab, shared = slot_lab(tmp_path, ["a=1", "b=1", "a=2", "b=2", "a=3", "b=3"], workers=3,
                           budget="{experiments: 6}", remote=pushing)
    summary = run(lab, dry_run=not pushing)
    record = summary.record
    check_numbers(record)
    assert len(record.attempts) == 7 and record.attempts[0].status == "baseline"
    # No evaluation ever found its device busy (they would crash), and both devices were used.
    assert [a.status for a in record.attempts].count("crash") == 0, [a.reason for a in record.attempts]
    assert sorted(p.name for p in shared.glob("used-*")) == ["used-0", "used-1"]
    # The record says which worker and device ran each attempt.
    experiments = record.attempts[1:]
    assert {a.extra["worker"] for a in experiments} <= {0, 1, 2}
    assert {a.extra["device"] for a in experiments} <= {"gpu 0", "gpu 1"}
    # Each keep's metric is the metric of exactly its commit's tree, and keeps improve on each other.
    kept = [a for a in record.attempts if a.status == "keep"]
    for before, after in zip([record.attempts[0], *kept], kept, strict=False):
        assert after.metric is not None and before.metric is not None and after.metric < before.metric
    for attempt in kept:
        a = float(lab.git("show", f"{attempt.sha}:model/a.txt"))
        b = float(lab.git("show", f"{attempt.sha}:model/b.txt"))
        assert attempt.metric == 10 - a - b
        assert lab.git("log", "-1", "--format=%(trailers:key=Arl-Experiment,valueonly)", str(attempt.sha)) \
            in ("", str(attempt.experiment))
    store = RecordStore(lab.repo, "demo").load()
    assert store is not None and [a.experiment for a in store.attempts] == [a.experiment for a in record.attempts]


@pytest.mark.parametrize("pushing", [False, True], ids=["dry-run", "pushing"])
def test_a_keep_measured_against_a_stale_best_is_applied_onto_the_new_head_and_measured_again(
        tmp_path: Path, pushing: bool) -> None:
    # Ticket 1 keeps a=1 (score 9). Ticket 2 waits for that keep, then sets b=2: against the best it
    # started from (10) it scores 8, a keep; but the head moved, so it is applied onto a=1 and measured.
    lab, _ = slot_lab(tmp_path, ["a=1@s2", "b=2@k1"], workers=2, budget="{experiments: 2}", remote=pushing)
    record = run(lab, dry_run=not pushing).record
    if pushing:  # what the remote has is the same
        assert lab.remote is not None
        assert Lab(lab.remote).git("rev-parse", "autoresearch/demo") == record.attempts[-1].sha
        pushed = RecordStore(lab.repo, "demo")
        assert Lab(lab.remote).git("rev-parse", pushed.ref) == pushed.head()
    check_numbers(record)
    first, second = record.attempts[1], record.attempts[2]
    assert (first.status, first.metric) == ("keep", 9.0)
    assert (second.status, second.metric) == ("keep", 7.0)  # the combined tree a=1, b=2
    assert second.extra["stale"]["first_metric"] == 8.0 and second.extra["stale"]["onto"] == first.sha
    assert "re-measured on top of experiment 1" in second.reason
    assert lab.git("rev-parse", f"{second.sha}^") == first.sha
    assert lab.git("show", f"{second.sha}:model/a.txt") == "1" and lab.git("show", f"{second.sha}:model/b.txt") == "2"
    assert second.best_before == 9.0  # judged against the best at the time it was kept


def test_a_stale_keep_that_does_not_apply_is_a_discard_naming_the_keep_it_conflicts_with(tmp_path: Path) -> None:
    lab, _ = slot_lab(tmp_path, ["a=1@s2", "a=3@k1"], workers=2, budget="{experiments: 2}")
    record = run(lab).record
    check_numbers(record)
    second = record.attempts[2]
    assert second.status == "discard" and second.sha is None
    assert "stale best: experiment 1" in second.reason and "does not apply" in second.reason
    assert record.best is not None and record.best.experiment == 1
    assert lab.git("show", "autoresearch/demo:model/a.txt") == "1"


def test_a_stale_keep_that_no_longer_beats_the_new_best_is_discarded(tmp_path: Path) -> None:
    # Ticket 1 keeps a=2 (score 8). Ticket 2's c=1 scores 9 against the 10 it started from, a keep; applied
    # onto a=2 it scores 10 - 2 - 1 + 5 = 12, which does not beat 8: a discard, and the branch stays at a=2.
    lab, _ = slot_lab(tmp_path, ["a=2@s2", "c=1@k1"], workers=2, budget="{experiments: 2}")
    record = run(lab).record
    check_numbers(record)
    second = record.attempts[2]
    assert (second.status, second.metric) == ("discard", 12.0)
    assert "re-measured on top of experiment 1" in second.reason and second.extra["stale"]["first_metric"] == 9.0
    assert lab.git("show", "autoresearch/demo:model/c.txt") == "0"


def test_sigterm_stops_every_worker_each_attempt_recorded_as_interrupted(tmp_path: Path) -> None:
    lab, shared = slot_lab(tmp_path, ["sleep"], workers=3, budget="{experiments: 10}")
    proc = subprocess.Popen([*ARL, "run", "--dry-run", "--progress", "plain"], cwd=lab.root,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while len(list(shared.glob("started-*"))) < 3:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    check_numbers(record)
    interrupted = [a for a in record.attempts if a.status == "interrupted"]
    assert len(interrupted) == 3, err
    assert sorted(a.extra["worker"] for a in interrupted) == [0, 1, 2]
    assert record.stop_reason == "interrupted by a signal"
    assert not list((lab.repo.common_dir / "autoresearch").glob("demo.inflight*.json"))


def test_sigkill_with_workers_in_flight_loses_nothing_on_restart(tmp_path: Path) -> None:
    lab, shared = slot_lab(tmp_path, ["sleep", "sleep", "a=1"], workers=2, budget="{experiments: 10}",
                           remote=True)
    proc = subprocess.Popen([*ARL, "run", "--progress", "plain"], cwd=lab.root, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while len(list(shared.glob("started-*"))) < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    pids = [int(p.read_text()) for p in shared.glob("pid-*")]
    proc.kill()
    proc.communicate(timeout=30)
    resumed = subprocess.run([*ARL, "run", "--experiments", "1", "--workers", "1"], cwd=lab.root,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    # Every worker's agent was ended by the restart (from the groups in its marker), not left to edit on.
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in pids):
        assert time.monotonic() < deadline, "an agent of the killed run outlived the restart"
        time.sleep(0.05)
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    check_numbers(record)
    statuses = [(a.status, a.extra.get("worker")) for a in record.attempts]
    assert statuses[0][0] == "baseline"
    assert sorted(w for s, w in statuses if s == "interrupted") == [0, 1]
    assert statuses[-1][0] == "keep"  # the resumed run went on from the right best
    assert "killed during this experiment" in record.attempts[1].reason
    assert not list((lab.repo.common_dir / "autoresearch").glob("demo.inflight*.json"))


@pytest.mark.unit
def test_the_pull_request_shows_the_workers_throughput_and_how_busy_the_slots_were() -> None:
    meta = Meta(loop="demo", base_branch="main", base_sha="b" * 40, created_at="2026-01-01T00:00:00.000000Z",
                goal="minimize", metric="score")
    start = Note(kind="run_start", at="2026-01-01T00:00:00.000000Z",
                 data={"run_id": "r1", "workers": 2, "slots": ["gpu 0"]})
    attempts = [Attempt(experiment=0, status="baseline", metric=10.0, description="baseline", parent="b" * 40,
                        sha="b" * 40, run_id="r1", started_at="2026-01-01T00:00:00.000000Z", eval_s=10.0)]
    attempts += [Attempt(experiment=n, status="discard", metric=11.0, description=f"try {n}", parent="b" * 40,
                         run_id="r1", started_at="2026-01-01T00:00:00.000000Z", agent_s=10.0, eval_s=10.0)
                 for n in range(1, 9)]
    end = Note(kind="run_end", at="2026-01-01T00:02:00.000000Z", data={"run_id": "r1", "reason": "done"})
    record = Record(meta=meta, attempts=attempts, notes=[start, end])
    # 8 experiments in 120 s: 240 an hour; the one slot evaluated 90 s of the 120.
    assert workers_view.row(record) == "| workers | 2 on gpu 0: 240 experiments/h, slots 75% busy (latest run) |"
    assert workers_view.row(record) in prbody.render(record, prbody.BodyContext(loop="demo", goal="minimize",
                                                                                metric="score"))
    assert "2 on gpu 0: 240 experiments/h, slots 75% busy" in report.build_report(record)
    assert "workers: 2 on gpu 0: 240 experiments/h, slots 75% busy (latest run)\n" in results.as_table(record)
    one = Record(meta=meta, attempts=attempts, notes=[Note(kind="run_start", at=start.at, data={"run_id": "r1"})])
    assert workers_view.row(one) is None  # a single worker on one slot: nothing new to say
    assert "workers:" not in results.as_table(one)


@pytest.mark.unit
def test_the_status_line_shows_what_is_in_flight_on_which_device() -> None:
    loop = config.parse(loop_config("workers: 2", "devices: [0, 1]")).loops["demo"]
    meta = Meta(loop="demo", base_branch="main", base_sha="b" * 40, created_at="", goal="minimize", metric="score")
    record = Record(meta=meta, attempts=[Attempt(experiment=0, status="baseline", metric=10.0,
                                                 description="baseline", parent="b" * 40, sha="b" * 40)])
    flights = {0: InFlight(0, 5, "", phase="agent"), 1: InFlight(1, 6, "", device="gpu 1", phase="evaluating")}
    view = RunView(loop=loop, record=lambda: record, dry_run=True, remote="origin", sandbox="none", isolated=False,
                   workers=2, slots=SlotPool(slots_for(loop, {})), in_flight=lambda: flights,
                   pushed=lambda: False, warn=lambda text: None)
    printer = StatusLine(io.StringIO())
    printer.run = view
    status = printer.status()
    assert "2 in flight: #5 agent, #6 evaluating on gpu 1" in status and "exp/h, slots 0% busy" in status


def test_the_cli_flag_runs_workers_side_by_side(tmp_path: Path) -> None:
    # Ticket 1's agent finishes only once ticket 2's has started: one at a time, it would wait for ever.
    lab, _ = slot_lab(tmp_path, ["a=1@s2", "b=1"], workers=1, budget="{experiments: 2}")
    done = subprocess.run([*ARL, "run", "--dry-run", "--workers", "2", "--progress", "plain"], cwd=lab.root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    check_numbers(record)
    assert sorted(a.extra["worker"] for a in record.attempts[1:]) == [0, 1]
    assert "2 workers on gpu 0, gpu 1" in done.stderr


@pytest.mark.unit
def test_actions_logs_do_not_fold_interleaved_experiments() -> None:
    loop = config.parse(loop_config("workers: 2", "devices: [0, 1]")).loops["demo"]
    meta = Meta(loop="demo", base_branch="main", base_sha="b" * 40, created_at="", goal="minimize", metric="score")
    record = Record(meta=meta)
    view = RunView(loop=loop, record=lambda: record, dry_run=True, remote="origin", sandbox="none", isolated=False,
                   workers=2, slots=SlotPool(slots_for(loop, {})), in_flight=dict, pushed=lambda: False,
                   warn=lambda text: None)
    stream = io.StringIO()
    printer = GitHubPrinter(stream)
    for experiment, phase in ((5, "agent (worker 0)"), (6, "agent (worker 1)"), (5, "evaluating (worker 0, gpu 0)")):
        printer.on_phase(view, experiment, phase)
    # A group per experiment would close and reopen at every line, hiding one worker's phases in another's.
    assert "::group::" not in stream.getvalue() and "experiment 6: agent (worker 1)" in stream.getvalue()
