"""Escape attempts under real bubblewrap: each one fails, and the experiment says why."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from arl_bot import policy as phase_policy
from arl_bot import process
from arl_bot.config import PhaseSandbox, SandboxSettings
from arl_bot.record import Attempt
from arl_bot.sandbox.bubblewrap import BubblewrapSandbox

from tests.labs import git
from tests.sandbox_lab import attack, run_once, sandbox_lab


def experiment(tmp_path: Path, code: str, **kwargs: str) -> Attempt:
    """Run the lab with code as the pipeline; return experiment 1."""
    summary = run_once(sandbox_lab(tmp_path, code, **kwargs))
    assert summary.record.attempts[0].status == "baseline", summary.record.attempts[0].reason
    return summary.record.attempts[1]


def marker_processes(marker: str) -> list[int]:
    """Host pids whose command line contains marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_agent_cannot_write_outside_the_tree_nor_touch_the_record(tmp_path: Path) -> None:
    agent = textwrap.dedent("""\
        import subprocess, sys
        from pathlib import Path
        common = Path.cwd().parents[2] / ".git"  # the tree is <repo>/.arl-bot/worktrees/demo
        wrote = []
        for target in [common / "hooks" / "pre-commit", common / "refs" / "autoresearch" / "pwned",
                       common.parent / "escape.txt", Path(sys.prefix) / "escape.txt"]:
            try:
                target.write_text("#!/bin/sh\\necho pwned\\n")
                wrote.append(str(target))
            except OSError as exc:
                print(f"blocked {target}: {exc.strerror}")
        ref = subprocess.run(["git", "update-ref", "refs/autoresearch/demo/pwned", "HEAD"],
                             capture_output=True, text=True)
        print("update-ref:", ref.returncode, ref.stderr.strip())
        try:
            Path(".git").write_text("gitdir: /tmp/elsewhere\\n")
            wrote.append(".git")
        except OSError as exc:
            print(f"blocked .git: {exc.strerror}")
        # Writes under /tmp land in the sandbox's private /tmp and vanish; the test checks the host.
        sys.exit(f"attack over; inside the sandbox it wrote {wrote}")
        """)
    lab = sandbox_lab(tmp_path, attack("pass"), agent_code=agent)
    tree_git = lab.root / ".arl-bot" / "worktrees" / "demo" / ".git"
    summary = run_once(lab)
    attempt = summary.record.attempts[1]
    assert attempt.status == "crash"
    assert "agent exited with status 1" in attempt.reason
    assert "attack over" in attempt.agent_log
    assert "Read-only file system" in attempt.agent_log
    assert not (lab.root / ".git" / "hooks" / "pre-commit").exists()
    assert not (lab.root / "escape.txt").exists() and not (Path(sys.prefix) / "escape.txt").exists()
    assert "pwned" not in git(lab.root, "for-each-ref", "--format=%(refname)")
    assert tree_git.read_text().startswith("gitdir: ") and "elsewhere" not in tree_git.read_text()


def test_an_edited_protected_file_makes_the_experiment_invalid(tmp_path: Path) -> None:
    agent = "from pathlib import Path\nPath('eval/run.py').write_text('print(\"score: 0\")')\nprint('edit eval')\n"
    attempt = run_once(sandbox_lab(tmp_path, attack("pass"), agent_code=agent)).record.attempts[1]
    assert attempt.status == "invalid"
    assert attempt.reason == "changed protected paths: eval/run.py"


def test_pipeline_cannot_rewrite_the_evaluation_while_it_runs(tmp_path: Path) -> None:
    attempt = experiment(tmp_path, attack("""\
        from pathlib import Path
        try:
            Path("eval/run.py").write_text("print('score: 0')")
        except OSError as exc:
            raise SystemExit(f"blocked: {exc.strerror}")
        """))
    assert attempt.status == "crash"
    assert attempt.reason == "exited with status 1"
    assert "blocked: Read-only file system" in attempt.eval_log


def test_evaluation_sees_no_secret_of_the_bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secretvalue1234")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secretvalue1234")
    attempt = experiment(tmp_path, attack("""\
        import glob, os
        found = [k for k in ("GITHUB_TOKEN", "ANTHROPIC_API_KEY") if k in os.environ]
        for path in glob.glob("/proc/*/environ"):
            try:
                data = open(path, "rb").read()
            except OSError:
                continue
            if b"secretvalue1234" in data:
                found.append(path)
        if not found:
            raise SystemExit("no secret visible")
        print("found", found)
        """))
    assert attempt.status == "crash"
    assert "no secret visible" in attempt.eval_log
    assert "secretvalue" not in attempt.eval_log + attempt.agent_log


def test_credentials_in_the_bots_home_are_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path("/var/tmp") / f"arl-test-home-{uuid.uuid4().hex[:8]}"  # outside the private /tmp
    try:
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
        (home / ".netrc").write_text("machine example.com password hunter2")
        monkeypatch.setenv("HOME", str(home))
        attempt = experiment(tmp_path, attack(f"""\
            from pathlib import Path
            home = Path({str(home)!r})
            assert home.is_dir()  # the folder is there; what matters is hidden inside it
            for secret in (home / ".ssh" / "id_ed25519", home / ".netrc"):
                try:
                    if secret.read_text():
                        raise SystemExit(f"read {{secret}}")
                except OSError:
                    pass
            raise SystemExit("credentials hidden")
            """))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert attempt.status == "crash"
    assert "credentials hidden" in attempt.eval_log


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A loopback TCP server; yields its port and who connected ("ok" per connection)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            seen.append(conn.recv(64).decode())
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


def test_evaluation_has_no_network_while_the_agent_does(tmp_path: Path, listener: tuple[int, list[str]]) -> None:
    port, seen = listener
    agent = textwrap.dedent(f"""\
        import shutil, socket
        socket.create_connection(("127.0.0.1", {port}), timeout=5).sendall(b"agent")
        shutil.copy("attack.py", "model/pipeline.py")
        print("agent reached the listener")
        """)
    attempt = run_once(sandbox_lab(tmp_path, attack(f"""\
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"pipeline")
        except OSError as exc:
            raise SystemExit(f"no network: {{exc}}")
        """), agent_code=agent)).record.attempts[1]
    assert attempt.status == "crash"
    assert "no network" in attempt.eval_log
    time.sleep(0.3)
    assert seen == ["agent"]


def test_a_fake_metric_line_does_not_count_when_a_scorer_decides(tmp_path: Path) -> None:
    fake = attack("""\
        import os
        from pathlib import Path
        Path(os.environ["AUTORESEARCH_OUTPUTS"], "prediction.txt").write_text("20")
        for guess in (Path(os.environ["AUTORESEARCH_OUTPUTS"]).parent / "score" / "result.json",):
            try:
                guess.write_text('{"score": 0}')
            except OSError as exc:
                print("cannot write the result:", exc.strerror)
        print("score: 0.0", flush=True)
        os._exit(0)
        """)
    attempt = experiment(tmp_path, fake, evaluate_extra=f'score: "{sys.executable} eval/score.py"')
    assert attempt.status == "discard"
    assert attempt.metric == 17.0  # |20 - 3|, as the scorer computed it; not the 0.0 the pipeline printed
    assert "cannot write the result" in attempt.eval_log  # its folder is not even there


def test_without_a_scorer_the_pipeline_can_print_its_own_metric(tmp_path: Path) -> None:
    """The documented limit: one process runs both the evaluation and the agent's code."""
    attempt = experiment(tmp_path, attack("""\
        import os
        print("score: 0.0", flush=True)
        os._exit(0)
        """))
    assert attempt.status == "keep" and attempt.metric == 0.0


def test_a_fork_bomb_stops_at_the_process_limit(tmp_path: Path) -> None:
    attempt = experiment(tmp_path, attack("""\
        import os, time
        count = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                count += 1
        except OSError as exc:
            raise SystemExit(f"fork failed after {count}: {exc.strerror}")
        """), sandbox="{kind: bubblewrap, evaluation: {processes: 64}}")
    assert attempt.status == "crash"
    assert "the process limit (64) was reached" in attempt.reason
    assert "fork failed after" in attempt.eval_log


def test_memory_past_the_limit_is_killed(tmp_path: Path) -> None:
    attempt = experiment(tmp_path, attack("""\
        hog = b"x" * (1024 * 1024 * 1024)
        """), sandbox="{kind: bubblewrap, evaluation: {memory_mb: 200}}")
    assert attempt.status == "crash"
    assert "the memory limit (200 MB) was reached" in attempt.reason


def test_memory_limit_without_cgroups_falls_back_to_rlimits(tmp_path: Path) -> None:
    from arl_bot.loop import RunOptions, Session

    lab = sandbox_lab(tmp_path, attack('hog = b"x" * (1024 * 1024 * 1024)\n'))
    sandbox = BubblewrapSandbox(SandboxSettings(evaluation=PhaseSandbox(memory_mb=300)), cgroups=False)
    summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, dry_run=True),
                      sandbox=sandbox).run()
    attempt = summary.record.attempts[1]
    assert attempt.status == "crash" and "MemoryError" in attempt.eval_log
    assert sandbox.last_enforced["memory"].startswith("RLIMIT_AS")


def test_no_background_process_outlives_the_phase(tmp_path: Path) -> None:
    marker = f"arl-marker-{uuid.uuid4().hex}"
    attempt = experiment(tmp_path, attack(f"""\
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", {marker!r}],
                         start_new_session=True)
        """))
    assert attempt.status == "keep"  # the pipeline itself ran fine ...
    assert marker_processes(marker) == []  # ... and what it left running is gone


def test_a_killed_bot_leaves_no_sandboxed_process_behind(tmp_path: Path) -> None:
    marker = f"arl-marker-{uuid.uuid4().hex}"
    lab = sandbox_lab(tmp_path, attack(f"""\
        import subprocess, sys
        subprocess.run([sys.executable, "-c", "import time; time.sleep(120)", {marker!r}])
        """))
    driver = textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from pathlib import Path
        from tests.labs import Lab
        from tests.sandbox_lab import run_once
        run_once(Lab(Path({str(lab.root)!r})))
        """)
    bot = subprocess.Popen([sys.executable, "-c", driver], env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        deadline = time.monotonic() + 20
        while not marker_processes(marker) and time.monotonic() < deadline and bot.poll() is None:
            time.sleep(0.05)
        assert marker_processes(marker), "the evaluation never started"
        bot.send_signal(signal.SIGKILL)
        bot.wait()
        deadline = time.monotonic() + 5
        while marker_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker_processes(marker) == []
    finally:
        bot.kill()
        bot.wait()
        for pid in marker_processes(marker):
            os.kill(pid, signal.SIGKILL)


def test_a_sandbox_s_init_is_reaped_even_where_pid_1_never_reaps(tmp_path: Path) -> None:
    # bwrap's outer process exits without waiting for the sandbox's init. Where PID 1 never reaps (an
    # application as PID 1 in a container), each phase used to leave it a zombie: a pid, until pid_max ran out.
    tree, scratch = tmp_path / "tree", tmp_path / "scratch"
    tree.mkdir()
    scratch.mkdir()
    inits: list[int] = []

    def find_init(outer: int) -> None:  # while the phase runs: the outer bwrap's child is the sandbox's init
        def look() -> None:
            for _ in range(200):
                try:
                    children = Path(f"/proc/{outer}/task/{outer}/children").read_text().split()
                except OSError:
                    return
                if children:
                    inits.append(int(children[0]))
                    return
                time.sleep(0.005)
        threading.Thread(target=look, daemon=True).start()

    process.spawn_hooks.append(find_init)
    try:
        sandbox = BubblewrapSandbox()
        policy = phase_policy.evaluation_policy(tree, scratch, {})
        for _ in range(3):
            assert sandbox.run(["sleep", "0.3"], cwd=tree, policy=policy, timeout=30).ok
    finally:
        process.spawn_hooks.remove(find_init)
    assert len(inits) == 3, inits
    time.sleep(0.2)  # PID 1, were it the parent, has had its chance too
    left = [pid for pid in inits if Path(f"/proc/{pid}").exists()]
    assert not left, [(pid, Path(f"/proc/{pid}/stat").read_text()) for pid in left]
