"""process.run: the whole group ends with the run, and a group left only with zombies is not waited for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from arl_bot import process

from tests.labs import running

# Makes this interpreter the subreaper of its descendants, so an orphan becomes *its* zombie, unreaped while
# process.run ends the group (as under a PID 1 that never reaps; process.run reaps it only after the group is
# gone); then runs argv through process.run and counts kill_group's waits.
ORPHANS = textwrap.dedent("""\
    import ctypes, json, os, sys
    from arl_bot import process
    PR_SET_CHILD_SUBREAPER = 36
    assert ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1) == 0
    waits = []
    real_sleep = process.time.sleep
    process.time.sleep = lambda s: (waits.append(s), real_sleep(s))[1]
    result = process.run(sys.argv[1:], cwd=".", env=dict(os.environ), timeout=30)
    print(json.dumps({"code": result.returncode, "waits": len(waits)}))
    """)


def run_orphaning(tmp_path: Path, script: str) -> dict[str, int]:
    """Run `sh -c script` through process.run under a subreaper that never reaps; its code and waits."""
    done = subprocess.run([sys.executable, "-c", ORPHANS, "/bin/sh", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, int] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_a_group_left_only_with_zombies_ends_without_waiting_out_the_grace(tmp_path: Path) -> None:
    # The background child exits at once; its parent exits without reaping it, and nothing else will.
    result = run_orphaning(tmp_path, "(true &); exit 0")
    assert result["code"] == 0
    # The grace period is KILL_GRACE_S in 10 ms steps (80 waits); a group of zombies needs none of them.
    assert result["waits"] <= 1


def test_a_live_member_that_ignores_sigterm_is_still_killed_beside_zombies(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    result = run_orphaning(tmp_path, f"(true &); (trap '' TERM; sleep 60 & echo $! > {pidfile}; wait) & "
                                     f"while [ ! -s {pidfile} ]; do :; done; exit 0")
    assert result["code"] == 0
    assert result["waits"] > 1  # it waited for the live one, as for any group member
    assert not running(int(pidfile.read_text()))  # and SIGKILL ended it


def test_a_background_child_does_not_outlive_a_clean_run(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    result = process.run(["/bin/sh", "-c", f"sleep 60 & echo $! > {pidfile}; exit 0"], cwd=tmp_path,
                         env=dict(os.environ), timeout=30)
    assert result.ok
    assert not running(int(pidfile.read_text()))


def test_a_finished_child_never_closes_a_descriptor_twice(tmp_path: Path) -> None:
    # The child's exit descriptor (a pidfd) was closed when its exit was seen, and again while draining:
    # by then its number can be another thread's file (a worker writing the record), which then failed
    # with EBADF. Files opened while the child runs stand in for that thread's.
    opened: list[int] = []

    def watch() -> bool:
        opened.append(os.open(tmp_path / f"file-{len(opened)}", os.O_CREAT | os.O_WRONLY, 0o600))
        return False

    result = process.run(["sh", "-c", "sleep 0.3"], cwd=tmp_path, env={"PATH": os.environ["PATH"]}, timeout=30,
                         watch=watch)
    assert result.ok and opened
    for fd in opened:
        os.write(fd, b"still mine")  # EBADF when run() closed this number a second time
        os.close(fd)


def test_reaping_adopted_orphans_never_takes_a_status_from_a_child_we_started(tmp_path: Path) -> None:
    # The bot reaps what bwrap and other children leave to it; a git command of ours that failed must still
    # read as failed (a child reaped behind its Popen's back reads as exit 0).
    ours = subprocess.Popen(["/bin/sh", "-c", "exit 7"])  # in our session, like every git command
    leader = subprocess.Popen(["/bin/sh", "-c", "exit 9"], start_new_session=True)  # like process.run's
    for child in (ours, leader):
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
            pass  # until it has exited and waits for us as a zombie
    process.reap_adopted()
    assert (ours.wait(), leader.wait()) == (7, 9)
