"""Hand experiments to workers: one at a time in the calling thread, or `workers` in flight at once.

Agents hold no device; each evaluation holds a slot (bot/slots.py). With more workers than slots, the
next experiments' agents think while the slots evaluate. Budgets count what is in flight: a worker never
starts an experiment the run could not finish within its limits.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import decide
from .config import Budget, Metric
from .errors import Interrupted
from .record import Attempt

REAP_S = 0.2  # how often the scheduler looks at its workers; bounded so the main thread's signal handler runs


def start_reason(budget: Budget, metric: Metric, state: decide.RunState, best: float | None,
                 max_experiments: int | None, in_flight: int) -> str | None:
    """Why no further experiment may start now, with in_flight running, or None (pure).

    The experiments in flight count as run, and each as costing the dearest so far: with the cost cap,
    a fifth worker does not start an agent that four others' bills could leave unpaid.
    """
    ahead = dataclasses.replace(state, experiments=state.experiments + in_flight,
                                cost_usd=state.cost_usd + in_flight * state.dearest_usd)
    return decide.stop_reason(budget, metric, ahead, best, max_experiments)


def allowance(budget: Budget, state: decide.RunState, others: int) -> float | None:
    """What an agent may spend (its cost limit), with `others` experiments in flight beside it (pure).

    Each of the others may still cost as much as the dearest experiment so far: this one's limit leaves
    room for their bills, so the run's spending stays under the cap however they finish.
    """
    if budget.cost_usd is None:
        return None
    return max(0.0, budget.cost_usd - state.cost_usd - max(0, others) * state.dearest_usd)


@dataclass
class Throughput:
    """What the workers did: experiments finished, and how long the device slots were held."""

    started: float = field(default_factory=time.monotonic)
    finished: int = 0

    def per_hour(self, now: float | None = None) -> float:
        """Experiments per hour so far."""
        elapsed = (now or time.monotonic()) - self.started
        return self.finished * 3600 / elapsed if elapsed > 0 else 0.0


class Scheduler:
    """Runs experiments until the run must stop; each worker number is in flight at most once."""

    def __init__(self, workers: int, *, stop: Callable[[int], str | None], experiment: Callable[[int], Attempt],
                 done: Callable[[Attempt], None], needs_baseline: Callable[[], bool],
                 baseline: Callable[[], None], tick: Callable[[], None], end_children: Callable[[], None]) -> None:
        self.workers = workers
        self._stop = stop  # why no experiment may start with n in flight, or None
        self._experiment = experiment  # one whole experiment on worker k, recorded when it returns
        self._done = done  # told each recorded attempt, in the scheduler's thread
        self._needs_baseline = needs_baseline
        self._baseline = baseline
        self._tick = tick  # between looks, in the scheduler's thread: pass on what the workers said
        self._end_children = end_children
        self.cancel = threading.Event()  # set when a signal stops all workers
        self.throughput = Throughput()
        self._lock = threading.Condition()
        self._results: list[tuple[int, Attempt | None, BaseException | None]] = []

    def check(self) -> None:
        """Raise Interrupted in a worker once a signal stopped the run (between its phases)."""
        if self.cancel.is_set():
            raise Interrupted("stopped by a signal: every worker stops")

    def run(self) -> str:
        """Experiments until a stop condition; the reason."""
        if self.workers == 1:
            return self._serial()
        return self._parallel()

    def _serial(self) -> str:
        while True:
            if self._needs_baseline():
                self._baseline()
            reason = self._stop(0)
            if reason is not None:
                return reason
            self._record(self._experiment(0))

    def _record(self, attempt: Attempt) -> None:
        self.throughput.finished += 1
        self._done(attempt)

    def _parallel(self) -> str:
        threads: dict[int, threading.Thread] = {}
        failure: BaseException | None = None
        try:
            while True:
                self._tick()
                failure = self._reap(threads) or failure
                if failure is not None:
                    break
                if self._needs_baseline():  # the branch moved: measure its head once nothing is in flight
                    if not threads:
                        self._baseline()
                        continue
                else:
                    reason = self._stop(len(threads))
                    free = [w for w in range(self.workers) if w not in threads]
                    while reason is None and free:
                        worker = free.pop(0)
                        threads[worker] = threading.Thread(target=self._work, args=(worker,),
                                                           name=f"arl-worker-{worker}", daemon=True)
                        threads[worker].start()
                        reason = self._stop(len(threads))
                    if reason is not None and not threads:
                        return reason
                with self._lock:
                    if not self._results:
                        self._lock.wait(REAP_S)
        except Interrupted:
            self._halt(threads)
            raise
        self._halt(threads)
        raise failure

    def _work(self, worker: int) -> None:
        try:
            attempt: Attempt | None = self._experiment(worker)
            error: BaseException | None = None
        except BaseException as exc:  # handed to the scheduler's thread, which raises it
            attempt, error = None, exc
        with self._lock:
            self._results.append((worker, attempt, error))
            self._lock.notify_all()

    def _reap(self, threads: dict[int, threading.Thread]) -> BaseException | None:
        with self._lock:
            results, self._results = self._results, []
        failure = None
        for worker, attempt, error in results:
            threads.pop(worker).join()
            if attempt is not None:
                self._record(attempt)
            elif not isinstance(error, Interrupted) and failure is None:
                failure = error
        return failure

    def _halt(self, threads: dict[int, threading.Thread]) -> None:
        """Stop every worker: each records its attempt as interrupted; their children are ended."""
        self.cancel.set()
        while threads:
            try:
                self._end_children()
                self._tick()
                self._reap(threads)
                with self._lock:
                    if not self._results:
                        self._lock.wait(REAP_S)
            except Interrupted:  # a second Ctrl-C: the workers are stopping already; wait for their records
                continue
