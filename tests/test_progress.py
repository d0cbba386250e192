"""Live progress: a redrawn status line in a real pseudo-terminal, plain lines and ::group:: folding in CI."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest
from arl_bot.loop import RunOptions, Session
from arl_bot.progress import CLEAR, TICK_S, GitHubPrinter, LinePrinter, StatusLine, choose

from tests.labs import EVAL_VALUE, Lab, make_lab, value_config
from tests.sample_records import small_record

COLUMNS, ROWS = 120, 40


def slow_lab(tmp_path: Path, sleep: float = 0.0) -> Lab:
    """Two seeds, each taking `sleep` seconds, so a run shows every phase for a while."""
    config = value_config().replace("seeds: [1]", "seeds: [1, 2]")
    evaluation = f"import time\ntime.sleep({sleep})\n" + EVAL_VALUE
    return make_lab(tmp_path, ["8", "9"], config_text=config, files={"eval/run.py": evaluation})


def run_cli(lab: Lab, env: dict[str, str], tty: bool) -> bytes:
    """Run `arl-bot run --dry-run` on the lab, in a pseudo-terminal or with pipes; return what it wrote."""
    argv = [sys.executable, "-m", "arl_bot.cli", "run", "--dry-run", "--experiments", "2", "--repo", str(lab.root)]
    # COLUMNS/LINES (pytest-xdist's workers set 80x24) would win over the pseudo-terminal's own size.
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS", "COLUMNS", "LINES")}
    if not tty:
        done = subprocess.run(argv, env={**base, **env}, capture_output=True, timeout=60, check=True)
        return done.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env={**base, "TERM": "xterm", **env},
                            close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=10) == 0
    return b"".join(chunks)


def test_terminal_gets_a_status_line_that_redraws(tmp_path: Path) -> None:
    out = run_cli(slow_lab(tmp_path), {}, tty=True).decode()  # every phase and seed redraws the line
    assert CLEAR in out
    statuses = [part.split("\n")[0] for part in out.split(CLEAR)]
    # The phases and clocks show on the status line, seed by seed ...
    assert any("▶ demo · experiment 0: evaluating seed 2 (2/2)" in s for s in statuses)
    assert any("experiment 1: agent" in s for s in statuses)
    assert any("experiment 2: evaluating seed 1 (1/2)" in s and "best score 8 (-20.0%)" in s for s in statuses)
    assert any(" · run 0:0" in s and "$0.00 this run" in s for s in statuses)
    # ... and what a person reads afterwards is the results, with no half-erased status left over.
    screen = pyte.Screen(COLUMNS, 400)  # tall enough to keep every line the run printed
    pyte.Stream(screen).feed(out)
    shown = [line.rstrip() for line in screen.display if line.strip()]
    assert any("experiment 1: KEEP score=8 (Δ -2) best=8" in line for line in shown)
    assert any("experiment 2: DISCARD score=9" in line for line in shown)
    assert not any("▶" in line for line in shown)
    assert not any("agent…" in line for line in shown)  # phases live on the status line only


def test_the_clock_redraws_while_a_phase_runs_and_never_after_the_end(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8"])
    session = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True))
    session.record = small_record()
    stream = io.StringIO()
    printer = StatusLine(stream)
    printer.on_start(session.view)
    printer.on_phase(session.view, 10, "agent")
    drawn = stream.getvalue().count(CLEAR)
    deadline = time.monotonic() + 30  # waits for an event (a redraw with nothing happening), asserts no duration
    while stream.getvalue().count(CLEAR) == drawn and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stream.getvalue().count(CLEAR) > drawn, "the status line never redrew its clock"
    printer.on_end(session.view, "budget spent")
    ended = stream.getvalue()
    time.sleep(3 * TICK_S)
    assert stream.getvalue() == ended and ended.endswith(CLEAR)  # nothing drawn after the final erase


def test_pipes_get_plain_lines(tmp_path: Path) -> None:
    out = run_cli(slow_lab(tmp_path), {}, tty=False).decode()
    assert "\x1b" not in out and "::group::" not in out
    assert "experiment 1: agent…" in out and "experiment 1: evaluating seed 2 (2/2)…" in out


def test_github_actions_folds_each_experiment(tmp_path: Path) -> None:
    out = run_cli(slow_lab(tmp_path), {"GITHUB_ACTIONS": "true", "CI": "true"}, tty=False).decode()
    lines = out.splitlines()
    opened = [i for i, line in enumerate(lines) if line.startswith("::group::")]
    closed = [i for i, line in enumerate(lines) if line == "::endgroup::"]
    assert [lines[i] for i in opened] == ["::group::experiment 0", "::group::experiment 1", "::group::experiment 2"]
    assert len(closed) == 3 and all(o < c for o, c in zip(opened, closed, strict=True))
    # The result line comes right after the fold closes, so it stays visible when folded.
    assert "experiment 1: KEEP" in lines[closed[1] + 1]


def test_agent_text_cannot_forge_a_workflow_command(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8"])
    session = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True))
    session.record = small_record()
    stream = io.StringIO()
    printer = GitHubPrinter(stream)
    printer.on_phase(session.view, 10, "agent")
    printer.on_attempt(session.view, session.record.attempts[10])  # its description holds "\n::error::injected"
    printer.on_warning(session.view, "agent said\n::add-mask::x")
    lines = stream.getvalue().splitlines()
    assert [line for line in lines if line.startswith("::")] == ["::group::experiment 10", "::endgroup::"]
    assert "steps: 200 -> 300 ::error::injected" in lines[-2]


@pytest.mark.unit
def test_choose_follows_where_output_goes() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert type(choose("auto", Tty(), {})) is StatusLine
    assert type(choose("auto", Tty(), {"CI": "1"})) is LinePrinter
    assert type(choose("auto", Tty(), {"TERM": "dumb"})) is LinePrinter
    assert type(choose("auto", io.StringIO(), {})) is LinePrinter
    assert type(choose("auto", io.StringIO(), {"GITHUB_ACTIONS": "true"})) is GitHubPrinter
    assert type(choose("status", io.StringIO(), {"CI": "1"})) is StatusLine
