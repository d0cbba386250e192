"""Tell a person at a terminal or in a CI log what the loop is doing, one line per event."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from .prbody import fmt
from .record import Attempt

if TYPE_CHECKING:
    from .loop import Session


class LinePrinter:
    """Plain lines: readable in a terminal and in a CI log alike."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._t0 = time.monotonic()

    def _say(self, session: Session, text: str) -> None:
        elapsed = time.monotonic() - self._t0
        print(f"[{session.loop.name} {elapsed:7.1f}s] {text}", file=self.stream, flush=True)

    def on_start(self, session: Session) -> None:
        """Say where the loop starts from."""
        record = session.record
        assert record is not None
        best = record.best
        where = f"resuming at experiment {record.next_experiment}, best {fmt(best.metric)}" if best \
            else "starting: measuring the baseline first"
        mode = "dry run (nothing is pushed)" if session.options.dry_run else f"pushing to {session.options.remote}"
        self._say(session, f"{where}; branch {session.loop.branch}; sandbox {session.sandbox.name}; {mode}")

    def on_warning(self, session: Session, text: str) -> None:
        """Pass a warning on."""
        self._say(session, f"warning: {text}")

    def on_phase(self, session: Session, experiment: int, phase: str) -> None:
        """Say which phase started."""
        self._say(session, f"experiment {experiment}: {phase}…")

    def on_attempt(self, session: Session, attempt: Attempt) -> None:
        """Say how an attempt ended."""
        record = session.record
        assert record is not None
        delta = f" (Δ {attempt.delta:+.4g})" if attempt.delta is not None and attempt.status != "baseline" else ""
        why = f" — {attempt.reason}" if attempt.status in ("crash", "invalid", "interrupted") else ""
        best = record.best.metric if record.best else None
        self._say(session, f"experiment {attempt.experiment}: {attempt.status.upper()} "
                           f"{session.loop.metric.name}={fmt(attempt.metric)}{delta} best={fmt(best)} "
                           f"\"{attempt.description}\"{why}")

    def on_end(self, session: Session, reason: str) -> None:
        """Say why the run stopped."""
        self._say(session, f"stopped: {reason}")
