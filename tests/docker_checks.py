"""The Docker sandbox against a real engine: run by scripts/test-docker, which starts one.

Not named test_*.py on purpose: the plain test run has no Docker engine; scripts/test-docker does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import docker
from arl_bot.sandbox.docker import LABEL

from tests.sandbox_lab import attack, run_once, sandbox_lab

DOCKER = "{kind: docker, evaluation: {memory_mb: 200, processes: 64}}"


def ours() -> list[str]:
    """Containers the sandbox started that still exist."""
    return [c.id for c in docker.from_env().containers.list(all=True, filters={"label": LABEL})]


def experiment(tmp_path: Path, code: str, sandbox: str = DOCKER) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    summary = run_once(sandbox_lab(tmp_path, code, sandbox=sandbox, python="python3"))
    assert summary.record.attempts[0].status == "baseline", summary.record.attempts[0].eval_log
    attempt = summary.record.attempts[1]
    return f"{attempt.status}|{attempt.metric}|{attempt.reason}|{attempt.eval_log}"


def test_a_loop_runs_in_containers_and_leaves_none(tmp_path: Path) -> None:
    assert experiment(tmp_path, attack("pass")).startswith("keep|0.0|")
    assert ours() == []


def test_evaluation_has_no_network_and_no_secrets(tmp_path: Path) -> None:
    os.environ["GITHUB_TOKEN"] = "ghs_secretvalue1234"
    try:
        outcome = experiment(tmp_path, attack("""\
            import os, socket
            assert "GITHUB_TOKEN" not in os.environ
            try:
                socket.create_connection(("1.1.1.1", 53), timeout=3)
            except OSError as exc:
                raise SystemExit(f"no network: {exc}")
            """))
    finally:
        del os.environ["GITHUB_TOKEN"]
    assert outcome.startswith("crash|") and "no network" in outcome


def test_limits_stop_memory_hogs_and_fork_bombs(tmp_path: Path) -> None:
    hog = experiment(tmp_path / "hog", attack('hog = b"x" * (1024 * 1024 * 1024)\n'))
    assert hog.startswith("crash|") and "memory limit" in hog
    bomb = experiment(tmp_path / "bomb", attack("""\
        import os, time
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
        except OSError as exc:
            raise SystemExit(f"fork failed: {exc.strerror}")
        """))
    assert bomb.startswith("crash|") and "fork failed" in bomb


def test_pipeline_cannot_write_the_tree(tmp_path: Path) -> None:
    outcome = experiment(tmp_path, attack("""\
        from pathlib import Path
        try:
            Path("eval/run.py").write_text("print('score: 0')")
        except OSError as exc:
            raise SystemExit(f"blocked: {exc.strerror}")
        """))
    assert outcome.startswith("crash|") and "blocked: Read-only file system" in outcome


def test_a_killed_bot_leaves_no_container(tmp_path: Path) -> None:
    lab = sandbox_lab(tmp_path, attack("import time\ntime.sleep(120)\n"), sandbox=DOCKER, python="python3")
    driver = textwrap.dedent(f"""\
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from tests.labs import Lab
        from tests.sandbox_lab import run_once
        run_once(Lab(Path({str(lab.root)!r})))
        """)
    bot = subprocess.Popen([sys.executable, "-c", driver])
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while time.monotonic() < deadline and bot.poll() is None:
            seen = seen + 1 if ours() else 0
            if seen >= 20:  # a container has been up a while: the long evaluation, not the baseline
                break
            time.sleep(0.1)
        assert ours(), "no container started"
        bot.send_signal(signal.SIGKILL)
        bot.wait()
        deadline = time.monotonic() + 20
        while ours() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ours() == []
    finally:
        bot.kill()
        bot.wait()


def test_a_flood_of_output_fills_neither_the_engine_nor_the_bot(tmp_path: Path) -> None:
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    outcome = experiment(tmp_path, attack("""\
        import sys
        line = "x" * 1023 + "\\n"
        for _ in range(300 * 1024):  # 300 MB through the engine's log
            sys.stdout.write(line)
        """))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert outcome.startswith("keep|0.0|"), outcome[:300]  # the score, printed last, is still read
    assert grown_mb < 100, f"the bot held {grown_mb:.0f} MB of a container's output"
