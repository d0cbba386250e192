"""What an agent or evaluation can make the bot spend: host memory through /tmp, the bot's disk and memory
through output, the bot's time through the metric parse, and other people's processes through a stale marker.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from arl_bot import process
from arl_bot.config import Parse, PhaseSandbox, SandboxSettings
from arl_bot.evaluate import MetricNotFound, parse_metric
from arl_bot.loop import RunOptions, Session
from arl_bot.record import Attempt
from arl_bot.sandbox.base import Limits
from arl_bot.sandbox.bubblewrap import BubblewrapSandbox, tmpfs_bytes

from tests.labs import make_lab, running
from tests.sandbox_lab import attack, run_once, sandbox_lab

MB = 2**20


def experiment(tmp_path: Path, code: str, sandbox: BubblewrapSandbox | None = None) -> Attempt:
    """Baseline and one experiment with code as the pipeline, under bubblewrap; experiment 1."""
    lab = sandbox_lab(tmp_path, code)
    if sandbox is None:
        summary = run_once(lab)
    else:
        summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, dry_run=True),
                          sandbox=sandbox).run()
    assert summary.record.attempts[0].status == "baseline", summary.record.attempts[0].reason
    return summary.record.attempts[1]


@pytest.mark.parametrize("folder", ["/tmp", "/dev/shm"])
def test_private_tmpfs_holds_no_more_than_half_the_memory_limit(tmp_path: Path, folder: str) -> None:
    # Without cgroups, memory_mb is RLIMIT_AS per process, which tmpfs pages do not count against: only the
    # tmpfs size stops a pipeline from parking the host's memory there.
    sandbox = BubblewrapSandbox(SandboxSettings(evaluation=PhaseSandbox(memory_mb=200)), cgroups=False)
    attempt = experiment(tmp_path, attack(f"""\
        import os
        written = 0
        try:
            with open(os.path.join({folder!r}, "hog"), "wb") as hog:
                while written < 300 * 2**20:
                    hog.write(b"x" * 2**20)
                    hog.flush()
                    written += 2**20
        except OSError as exc:
            raise SystemExit(f"stopped after {{written // 2**20}} MB: {{exc.strerror}}")
        """), sandbox)
    assert attempt.status == "crash"
    assert "No space left on device" in attempt.eval_log
    assert "stopped after 100 MB" in attempt.eval_log or "stopped after 99 MB" in attempt.eval_log
    assert sandbox.last_enforced["tmpfs"] == "/tmp and /dev/shm up to 100 MB each"


def test_the_scratch_folder_is_measured_and_a_phase_past_the_cap_stopped(tmp_path: Path) -> None:
    # $AUTORESEARCH_SCRATCH is a host folder (often on a host /tmp that is a tmpfs): the private /tmp's
    # size does not cover it, so the sandbox measures it while the phase runs.
    sandbox = BubblewrapSandbox(SandboxSettings(evaluation=PhaseSandbox(memory_mb=200)), cgroups=False)
    attempt = experiment(tmp_path, attack("""\
        import os, time
        with open(os.path.join(os.environ["AUTORESEARCH_SCRATCH"], "hog"), "wb") as hog:
            for _ in range(300):
                hog.write(b"x" * 2**20)
        time.sleep(15)  # holding it: a check that never looked would let this end as a keep
        """), sandbox)
    assert attempt.status == "crash"
    assert "past the 100 MB allowed; the phase was stopped" in attempt.reason
    assert sandbox.last_enforced["writable folders"] == "up to 100 MB, measured while it runs"


def test_a_scratch_folder_of_a_million_empty_files_is_stopped_too(tmp_path: Path) -> None:
    from arl_bot.sandbox.limits import DiskGuard

    folder = tmp_path / "scratch"
    (folder / "a" / "b").mkdir(parents=True)
    for i in range(30):
        (folder / "a" / "b" / str(i)).write_bytes(b"x" * 4096)
    guard = DiskGuard([folder], 1 * MB, max_entries=20)
    assert guard.over() and "more than 20 files" in guard.reason
    roomy = DiskGuard([folder], 1 * MB)
    assert not roomy.over()
    (folder / "big").write_bytes(b"x" * 2 * MB)
    roomy._next = 0.0  # the next look is due (it is rate-limited in time)
    assert roomy.over() and "reached 2 MB" in roomy.reason


def test_without_a_memory_limit_tmpfs_gets_an_eighth_of_the_ram(tmp_path: Path) -> None:
    attempt = experiment(tmp_path, attack("""\
        import os
        sizes = [os.statvfs(f).f_blocks * os.statvfs(f).f_frsize for f in ("/tmp", "/dev/shm")]
        raise SystemExit(f"sizes {sizes}")
        """))
    expected = tmpfs_bytes(Limits())
    page = os.sysconf("SC_PAGE_SIZE")
    sizes = json.loads(attempt.eval_log.split("sizes ", 1)[1].splitlines()[0])
    assert all(abs(size - expected) < page for size in sizes), (sizes, expected)


@contextmanager
def largest_open_file() -> Iterator[list[int]]:
    """While the block runs, the size of the largest regular file this process holds open (sampled)."""
    largest = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for fd in os.listdir("/proc/self/fd"):
                try:
                    info = os.stat(f"/proc/self/fd/{fd}")
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    largest[0] = max(largest[0], info.st_size)
            stop.wait(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield largest
    finally:
        stop.set()
        thread.join()


def test_a_flood_of_output_is_kept_as_a_bounded_tail(tmp_path: Path) -> None:
    with largest_open_file() as largest:
        attempt = experiment(tmp_path, attack("""\
            import sys
            line = "x" * (2**20 - 1) + "\\n"
            for _ in range(400):  # 400 MB of stdout, then the evaluation prints its metric
                sys.stdout.write(line)
            sys.stdout.flush()
            """))
    assert attempt.status == "keep" and attempt.metric == 0.0  # the metric line at the end still counts
    assert attempt.eval_log.startswith("[output truncated: the first ")
    dropped = int(attempt.eval_log.split("the first ", 1)[1].split(" bytes", 1)[0].replace(",", ""))
    assert dropped > 390 * MB
    assert largest[0] < 10 * MB  # nothing the size of the output was ever written to a file


def test_process_run_keeps_the_tails_and_says_how_much_it_dropped(tmp_path: Path) -> None:
    code = "import sys\nsys.stdout.write('o' * 3_000_000 + 'END')\nsys.stderr.write('e' * 50_000 + 'ERR')\n"
    result = process.run([sys.executable, "-c", code], cwd=tmp_path, env={}, timeout=30, stdin="ignored" * 100_000)
    assert result.ok
    assert len(result.stdout) == process.STDOUT_BYTES and result.stdout.endswith("END")
    assert result.stdout_dropped == 3_000_003 - process.STDOUT_BYTES
    assert len(result.stderr) == process.TAIL_BYTES and result.stderr.endswith("ERR")
    assert result.stderr_dropped == 50_003 - process.TAIL_BYTES


def test_process_run_feeds_stdin_while_reading_a_big_stdout(tmp_path: Path) -> None:
    # The child writes more than a pipe holds before reading its stdin: feeding stdin first would deadlock.
    code = "import sys\nsys.stdout.write('x' * 1_000_000)\nsys.stdout.flush()\nprint(len(sys.stdin.read()))\n"
    result = process.run([sys.executable, "-c", code], cwd=tmp_path, env={}, timeout=30, stdin="y" * 500_000)
    assert result.ok, result.stderr
    assert result.stdout.endswith("500000\n")


@pytest.mark.parametrize("blank", ["", "   ", "\t", "\r"])
def test_sixty_thousand_lines_parse(blank: str) -> None:
    # The old pattern, `^\s*name...` over the whole output with MULTILINE, was quadratic in blank lines.
    noise = (blank + "\n") * 60_000
    default, regex = Parse(), Parse(regex=r"^score:\s*([-+0-9.eE]+)$")
    assert parse_metric(f"score: 1.0\n{noise}score: 2.5\n{noise}", default, "score") == 2.5
    assert parse_metric(f"score: 1.0\n{noise}score: 2.5\n{noise}", regex, "score") == 2.5
    with pytest.raises(MetricNotFound):
        parse_metric(noise + "score:\n" + "1" * 60_000 + "x\n", default, "score")


def test_the_parse_reads_each_line_as_before() -> None:
    default = Parse()
    output = "loss: 3\n  score = 1e-3  \nscore: 7 (best)\nother_score: 1\nScore: 9\n"
    assert parse_metric(output, default, "score") == 1e-3  # the last whole `score: <number>` line
    assert parse_metric("score: 12.\nscore: .5\n", default, "score") == 0.5
    with pytest.raises(MetricNotFound, match="the metric is nan"):
        parse_metric("score: nan\n", default, "score")
    regex = Parse(regex=r"acc=([0-9.]+)")
    assert parse_metric("acc=0.1 acc=0.2\nacc=0.3 acc=0.4\nnothing\n", regex, "acc") == 0.4
    anchored = Parse(regex=r"^val: ([0-9.]+)$")
    assert parse_metric("val: 1\nx val: 2\nval: 3 y\n", anchored, "val") == 1.0


def test_a_stale_marker_naming_someone_elses_group_kills_nothing(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8"])
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, dry_run=True)).run()
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)  # its own session and group
    ours = subprocess.Popen(["sleep", "300"], start_new_session=True)
    marker = lab.repo.common_dir / "autoresearch" / "demo.inflight.json"
    try:
        proof = process.identity(stranger.pid)
        boot, _, start = proof.partition("/")
        marker.write_text(json.dumps({
            "experiment": 2, "started_at": "", "run_id": "dead", "description": "", "pid": 1,
            "groups": [
                stranger.pid,  # an older marker's bare id: it proves nothing
                [stranger.pid, f"{boot}/{int(start) - 1}"],  # the id, now held by a process started later
                [stranger.pid, f"another-boot/{start}"],  # a marker from before a reboot
                [ours.pid, process.identity(ours.pid)],  # still the group the dead run started
            ],
        }))
        summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, dry_run=True)).run()
        assert running(stranger.pid)
        ours.wait(timeout=10)  # killed, so it can be reaped
        assert ours.returncode == -signal.SIGTERM
        assert summary.record.attempt(2) is not None
        assert summary.record.attempt(2).status == "interrupted"  # type: ignore[union-attr]
    finally:
        for child in (stranger, ours):
            child.kill()
            child.wait()
