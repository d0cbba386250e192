"""Host services around the evaluation: ready checks, a port that never opens, a service that dies."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from arl_bot import config
from arl_bot.errors import ArlError, ConfigError
from arl_bot.evaluate import get_evaluator
from arl_bot.loop import RunOptions, Session
from arl_bot.measurer import Measurer
from arl_bot.services import port_open
from arl_bot.store import RecordStore

from tests.labs import PY
from tests.noisy_lab import noisy_config, noisy_lab

# A device bridge stand-in: answers every connection with an offset, records its pid, and with
# --once exits after the first connection (a bridge that dies while the evaluation uses it).
SERVER = textwrap.dedent("""\
    import socket, sys, os
    port = int(sys.argv[1])
    with open(sys.argv[2], "w") as f:
        f.write(str(os.getpid()))
    print("bridge starting", flush=True)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    print("bridge ready", flush=True)
    while True:
        conn, _ = sock.accept()
        conn.sendall(b"-1.5\\n")
        conn.close()
        if "--once" in sys.argv:
            print("bridge lost the device", flush=True)
            sys.exit(4)
    """)

# The evaluation asks the bridge (found through the environment) for an offset; if the bridge is
# gone it falls back to 0 and still prints a number: only the bot can tell that run is worthless.
EVAL_DEVICE = textwrap.dedent("""\
    import os, socket
    from pathlib import Path
    value = float(Path("model/value.txt").read_text())
    port = int(os.environ["AUTORESEARCH_SERVICE_BRIDGE_PORT"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            offset = float(conn.recv(64).decode())
    except OSError:
        offset = 0.0
    print(f"score: {value + offset}")
    print("model:", os.environ.get("DEVICE_MODEL"))
    """)


def _lab(tmp_path: Path, service: str, seeds: str = "[1]") -> Session:
    cfg = noisy_config(seeds=seeds, command=f"{PY} eval/device.py", budget="{experiments: 1}",
                       loop=f"services:\n  - {service}")
    lab = noisy_lab(tmp_path, ["8"], cfg, files={"eval/device.py": EVAL_DEVICE, "svc/bridge.py": SERVER})
    return Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True))


def _gone(pid_file: Path) -> bool:
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A killed grandchild whose parent died waits as a zombie for whatever init this machine runs.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" in status.read_text()


def test_a_service_is_up_during_the_evaluation_and_stopped_after(tmp_path: Path) -> None:
    pid_file = tmp_path / "bridge.pid"
    session = _lab(tmp_path, f'{{name: bridge, command: "{PY} svc/bridge.py {{port}} {pid_file}", port: 0, '
                             f"timeout: 10, env: {{DEVICE_MODEL: \"pixel-{{port}}\"}}}}")
    summary = session.run()
    assert [a.status for a in summary.record.attempts] == ["baseline", "keep"]
    assert summary.record.attempts[0].metric == 8.5  # 10 - 1.5 from the bridge
    assert "model: pixel-" in summary.record.attempts[0].eval_log
    assert _gone(pid_file)  # stopped after the evaluation, whole process group


def test_a_service_that_never_opens_its_port_is_a_crash_with_its_log(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    session = _lab(tmp_path, f'{{name: bridge, command: "echo $$ > {pid_file}; echo warming up; exec sleep 30", '
                             "port: 0, timeout: 1}")
    with pytest.raises(ArlError, match="baseline evaluation failed: service 'bridge' was not ready after 1s"):
        session.run()
    record = RecordStore(session.repo, "demo").load()
    assert record is not None
    baseline = record.attempts[0]
    assert baseline.status == "crash" and "never opened" in baseline.reason
    assert "warming up" in baseline.eval_log
    assert _gone(pid_file)


def test_a_ready_command_that_never_succeeds_times_out(tmp_path: Path) -> None:
    session = _lab(tmp_path, '{name: bridge, command: "sleep 30", ready: {command: "false"}, timeout: 0.5}')
    with pytest.raises(ArlError, match="`false` never succeeded"):
        session.run()


def test_a_service_that_exits_at_start_fails_fast(tmp_path: Path) -> None:
    session = _lab(tmp_path, '{name: bridge, command: "echo no device attached; exit 3", port: 0, timeout: 30}')
    with pytest.raises(ArlError, match=r"exited with status 3 before it was ready"):
        session.run()


def test_a_service_that_dies_mid_evaluation_makes_a_crash_not_a_bogus_score(tmp_path: Path) -> None:
    pid_file = tmp_path / "bridge.pid"
    session = _lab(tmp_path, f'{{name: bridge, command: "{PY} svc/bridge.py {{port}} {pid_file} --once", port: 0}}',
                   seeds="[1, 2]")
    with pytest.raises(ArlError, match="died during the evaluation"):
        session.run()
    record = RecordStore(session.repo, "demo").load()
    assert record is not None
    baseline = record.attempts[0]
    assert baseline.status == "crash" and "exited with status 4" in baseline.reason
    assert "bridge lost the device" in baseline.eval_log
    assert baseline.metric is None


@pytest.mark.unit
def test_service_config_needs_a_readiness_check() -> None:
    with pytest.raises(ConfigError, match="needs `port` or `ready"):
        config.parse(noisy_config(loop='services:\n  - {name: x, command: "sleep 1"}'))


def test_port_open_sees_a_listener() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_open(port)
    assert not port_open(port)


def test_arl_bot_run_on_a_services_lab_passes_its_baseline_through_the_cli(tmp_path: Path) -> None:
    # The CLI reports seeds to its printer; that once wrapped the evaluator, and the services'
    # variables went to the wrapper: the baseline crashed with KeyError AUTORESEARCH_SERVICE_BRIDGE_PORT.
    pid_file = tmp_path / "bridge.pid"
    session = _lab(tmp_path, f'{{name: bridge, command: "{PY} svc/bridge.py {{port}} {pid_file}", port: 0}}',
                   seeds="[1, 2]")
    result = subprocess.run([sys.executable, "-m", "arl_bot.cli", "run", "--dry-run", "--progress", "plain"],
                            cwd=session.repo.root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "experiment 0: evaluating seed 2 (2/2)" in result.stderr  # seeds still reach the printer
    record = RecordStore(session.repo, "demo").load()
    assert record is not None
    assert [a.status for a in record.attempts] == ["baseline", "keep"]
    assert record.attempts[0].metric == 8.5  # 10 - 1.5 from the bridge
    assert _gone(pid_file)


def test_the_measurer_never_changes_the_evaluator_it_is_given(tmp_path: Path) -> None:
    pid_file = tmp_path / "bridge.pid"
    session = _lab(tmp_path, f'{{name: bridge, command: "{PY} svc/bridge.py {{port}} {pid_file}", port: 0}}')
    evaluator = get_evaluator(session.loop, session.sandbox)
    sandbox = evaluator.sandbox
    measurement = Measurer(session.loop, evaluator).measure(session.repo.root, [1])
    assert measurement.metric == 8.5  # the services' variables reached the evaluation...
    assert evaluator.sandbox is sandbox  # ...through a copy bound to this measurement, not the evaluator


def test_a_service_runs_from_the_base_commits_files_with_their_modes_and_links(tmp_path: Path) -> None:
    pid_file = tmp_path / "bridge.pid"
    start = f"#!/bin/sh\nexec {PY} svc/bridge.py \"$1\" {pid_file}\n"
    cfg = noisy_config(seeds="[1]", command=f"{PY} eval/device.py", budget="{experiments: 1}",
                       loop='services:\n  - {name: bridge, command: "./svc/start {port}", port: 0}')
    lab = noisy_lab(tmp_path, ["8"], cfg, files={"eval/device.py": EVAL_DEVICE, "svc/bridge.py": SERVER,
                                                  "svc/start.sh": start})
    (lab.root / "svc/start.sh").chmod(0o755)
    (lab.root / "svc/start").symlink_to("start.sh")
    lab.commit_all("an executable start script behind a link")
    summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True)).run()
    assert [a.metric for a in summary.record.attempts] == [8.5, 6.5]
