"""Tell a person what the loop is doing: a redrawn status line in a terminal, plain lines in CI logs."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Mapping
from typing import Literal, TextIO

from . import guards
from .record import Attempt
from .runview import Listener, RunView
from .sanitize import terminal_text
from .views import fmt

Mode = Literal["auto", "status", "plain", "github"]
MODES: tuple[str, ...] = ("auto", "status", "plain", "github")
TICK_S = 0.5  # how often the status line redraws its clocks
CLEAR = "\r\x1b[2K"  # carriage return, then erase the whole line (ECMA-48 EL 2)


def one_line(text: str) -> str:
    """Agent text on one line, with nothing a terminal or a CI log acts on."""
    # A newline could start a forged `::workflow-command::` in a CI log; an escape sequence could clear
    # the terminal, retitle it or rewrite what was printed before.
    return " ".join(terminal_text(text).split())


def clock(seconds: float) -> str:
    """Elapsed time as m:ss or h:mm:ss."""
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class LinePrinter(Listener):
    """Plain lines, one per event: readable in a terminal, a CI log and a pipe alike."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._t0 = time.monotonic()
        self.run: RunView | None = None
        self.experiment: int | None = None
        self.phase = ""
        self.run_cost = 0.0

    def _write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _say(self, run: RunView, text: str) -> None:
        elapsed = time.monotonic() - self._t0
        self._write(f"[{run.loop.name} {elapsed:7.1f}s] {text}")

    def on_start(self, run: RunView) -> None:
        """Say where the loop starts from."""
        self.run = run
        record = run.record
        assert record is not None
        best = record.best
        where = f"resuming at experiment {record.next_experiment}, best {fmt(best.metric)}" if best \
            else "starting: measuring the baseline first"
        mode = "dry run (nothing is pushed)" if run.dry_run else f"pushing to {run.remote}"
        workers = f"; {run.workers} workers on {', '.join(run.slots)}" if run.workers > 1 else ""
        self._say(run, f"{where}; branch {run.loop.branch}; sandbox {run.sandbox}; {mode}{workers}")

    def on_warning(self, run: RunView, text: str) -> None:
        """Pass a warning on."""
        self._say(run, f"warning: {one_line(text)}")

    def on_phase(self, run: RunView, experiment: int, phase: str) -> None:
        """Say which phase started."""
        self.run, self.experiment, self.phase = run, experiment, phase
        self._say(run, f"experiment {experiment}: {phase}…")

    def on_seed(self, run: RunView, seed: int) -> None:
        """Say which seed is being evaluated (only worth a line when there are several)."""
        self.phase = self._seed_phase(seed)
        if self.experiment is not None and len(run.loop.evaluate.seeds) > 1:
            self._say(run, f"experiment {self.experiment}: {self.phase}…")

    def on_seed_done(self, run: RunView, seed: int, error: str) -> None:
        """Note that a seed finished; after the last one the attempt is being recorded."""
        seeds = list(run.loop.evaluate.seeds)
        if error or not seeds or seed == seeds[-1]:
            self.phase = "recording"

    def _seed_phase(self, seed: int) -> str:
        seeds = list(self.run.loop.evaluate.seeds) if self.run is not None else []
        where = f" ({seeds.index(seed) + 1}/{len(seeds)})" if seed in seeds else ""
        return f"evaluating seed {seed}{where}"

    def on_attempt(self, run: RunView, attempt: Attempt) -> None:
        """Say how an attempt ended."""
        self.run_cost += attempt.cost_usd
        self._say(run, self.result_line(run, attempt))

    def result_line(self, run: RunView, attempt: Attempt) -> str:
        """One line saying how an attempt ended."""
        record = run.record
        assert record is not None
        delta = f" (Δ {attempt.delta:+.4g})" if attempt.delta is not None and attempt.status != "baseline" else ""
        why = f" — {one_line(attempt.reason)}" if attempt.status in ("crash", "invalid", "interrupted") else ""
        if attempt.status == "discard" and guards.failed_guard(attempt):
            why = f" — turned down by guard {one_line(guards.failed_guard(attempt))}"
        best = record.best.metric if record.best else None
        return (f"experiment {attempt.experiment}: {attempt.status.upper()} "
                f"{run.loop.metric.name}={fmt(attempt.metric)}{delta} best={fmt(best)} "
                f"\"{one_line(attempt.description)}\"{why}")

    def on_end(self, run: RunView, reason: str) -> None:
        """Say why the run stopped."""
        self._say(run, f"stopped: {one_line(reason)}")


class GitHubPrinter(LinePrinter):
    """Plain lines, with each experiment folded in a `::group::` that GitHub Actions' log viewer collapses."""

    _open = False

    def _fold(self, title: str | None) -> None:
        if self._open:
            self._write("::endgroup::")
        self._open = title is not None
        if title is not None:
            self._write(f"::group::{title}")

    def on_phase(self, run: RunView, experiment: int, phase: str) -> None:
        """Open the experiment's group on its first phase (with workers, experiments interleave: no groups)."""
        if run.workers == 1 and (experiment != self.experiment or not self._open):
            self._fold(f"experiment {experiment}")
        super().on_phase(run, experiment, phase)

    def on_attempt(self, run: RunView, attempt: Attempt) -> None:
        """Close the group first, so the result stays visible when the group is folded."""
        self._fold(None)
        super().on_attempt(run, attempt)

    def on_end(self, run: RunView, reason: str) -> None:
        """Close any group left open by an interrupted experiment."""
        self._fold(None)
        super().on_end(run, reason)


class StatusLine(LinePrinter):
    """A terminal's view: results scroll by as lines; one status line at the bottom redraws in place."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._phase_t0 = time.monotonic()
        self._drawn = False

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write((CLEAR if self._drawn else "") + text + "\n")
            self._drawn = False
            self._draw()

    def status(self) -> str:
        """The status line's text (without escape codes)."""
        run = self.run
        if run is None or run.record is None:
            return ""
        record = run.record
        now = time.monotonic()
        parts = [f"▶ {run.loop.name}"]
        if run.workers > 1:  # one phase at a time says little: what each worker runs, and the rate
            flights = run.in_flight()
            parts.append(f"{len(flights)} in flight: " + (", ".join(
                f"#{f.experiment} {f.phase.split(' (')[0] or 'starting'}{' on ' + f.device if f.device else ''}"
                for f in flights) or "none"))
            done = run.throughput()
            parts.append(f"{done.per_hour:.0f} exp/h, slots {done.busy:.0%} busy")
        elif self.experiment is not None:
            parts.append(f"experiment {self.experiment}: {self.phase or 'starting'} {clock(now - self._phase_t0)}")
        parts.append(f"run {clock(now - self._t0)}")
        best, baseline = record.best, record.baseline
        if best is not None and best.metric is not None:
            text = f"best {run.loop.metric.name} {fmt(best.metric)}"
            if baseline is not None and baseline.metric and best is not baseline:
                text += f" ({(best.metric - baseline.metric) / abs(baseline.metric) * 100:+.1f}%)"
            parts.append(text)
        parts.append(f"${self.run_cost:.2f} this run")
        return " · ".join(parts)

    def _draw(self) -> None:
        with self._lock:
            text = self.status()
            if not text:
                return
            width = shutil.get_terminal_size((100, 24)).columns
            if len(text) >= width:  # a wrapped line cannot be redrawn in place
                text = text[: max(1, width - 2)] + "…"
            self.stream.write(CLEAR + text)
            self.stream.flush()
            self._drawn = True

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            with self._lock:  # stop is set under the lock: no redraw can land after the final erase
                if self._stop.is_set():
                    return
                self._draw()

    def on_start(self, run: RunView) -> None:
        """Print the start line and start redrawing the clocks."""
        super().on_start(run)
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="arl-status", daemon=True)
        self._ticker.start()

    def on_phase(self, run: RunView, experiment: int, phase: str) -> None:
        """Show the phase on the status line instead of printing a line."""
        if experiment != self.experiment:
            self._phase_t0 = time.monotonic()
        self.run, self.experiment, self.phase = run, experiment, phase
        self._draw()

    def on_seed(self, run: RunView, seed: int) -> None:
        """Show the seed on the status line."""
        self.phase = self._seed_phase(seed)
        self._draw()

    def on_end(self, run: RunView, reason: str) -> None:
        """Stop redrawing, erase the status line and print why the run stopped."""
        with self._lock:
            self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        self.experiment = None
        super().on_end(run, reason)
        with self._lock:
            if self._drawn:
                self.stream.write(CLEAR)
                self.stream.flush()
                self._drawn = False


def choose(mode: str = "auto", stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> LinePrinter:
    """The printer for where the output goes: GitHub Actions, another CI or a pipe, or a terminal."""
    stream = stream or sys.stderr
    env = os.environ if env is None else env
    if mode == "auto":
        if env.get("GITHUB_ACTIONS") == "true":
            mode = "github"
        elif env.get("CI") or env.get("TERM") == "dumb" or not stream.isatty():
            mode = "plain"
        else:
            mode = "status"
    printers: dict[str, type[LinePrinter]] = {"status": StatusLine, "plain": LinePrinter, "github": GitHubPrinter}
    return printers[mode](stream)

