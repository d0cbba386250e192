"""One run of a research loop: baseline, then agent -> check -> evaluate -> keep or discard -> record.

The loop's program (`Session`); each step lives in its own module. A run starts from what baseline.py
prepares (the record, the branch, worker 0's worktree) and measures (the baseline, or a re-measure when the
branch moved outside the loop); the scheduler (scheduler.py) then hands experiments to workers, one at a
time or `workers` in flight. An experiment (experiment.py) is planned (strategy.py), run in its worker's
worktree (the agent) and in a device slot (slots.py: the evaluation), checked, decided by the measurer and
the guards (a keep measured against a best that moved meanwhile is applied onto the new head and measured
again), and recorded by the journal (journal.py), which numbers attempts in the order they are recorded.
The research branch (branch.py) moves only by compare-and-swap; a revert or a rebase is `adopt`ed
(baseline.py) the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import baseline, decide, experiment, guards, names
from .agents import Agent, get_agent
from .agents.base import COST_CAPPED
from .branch import WORKTREES, ResearchBranch
from .config import Config, Loop
from .errors import ArlError, Interrupted
from .evaluate import Evaluator, SeedResult, get_evaluator
from .experiment import Work
from .git import Git
from .journal import Journal
from .lock import LoopLock
from .measurer import Measurer
from .record import Attempt, Record
from .runview import Audience, Listener, RunView, listener
from .sandbox import Sandbox, choose_sandbox
from .scheduler import Scheduler, start_reason
from .signals import Signals
from .slots import DeviceSandbox, Slot, SlotPool, slots_for
from .store import RecordStore
from .strategy import Strategy
from .sync import Remote

__all__ = ["WORKTREES", "Listener", "RunOptions", "RunSummary", "Session", "now"]


@dataclass(frozen=True)
class RunOptions:
    """How this run goes."""

    experiments: int | None = None  # overrides budget.experiments for this run
    dry_run: bool = False  # push nothing, call no API
    remote: str = "origin"
    run_id: str = ""
    run_url: str = ""
    notes: dict[str, object] = field(default_factory=dict)  # more run_start data (a job chain's budget so far)


@dataclass
class RunSummary:
    """What one run did."""

    record: Record
    reason: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def kept(self) -> int:
        """Keeps in this run."""
        return sum(1 for a in self.attempts if a.status == "keep")


now = names.now  # UTC time as the record writes it


class Session:
    """Runs one loop in its own worktrees; the user's checkout is never touched."""

    def __init__(
        self,
        repo: Git,
        config: Config,
        loop: Loop,
        options: RunOptions | None = None,
        *,
        sandbox: Sandbox | None = None,
        agent: Agent | None = None,
        evaluator: Evaluator | None = None,
        listeners: list[Listener] | list[Any] | None = None,
    ) -> None:
        self.repo = repo
        self.config = config
        self.loop = loop
        self.options = options or RunOptions()
        self.sandbox = sandbox or choose_sandbox(loop)
        self.agent = agent or get_agent(loop, self.sandbox)
        self._shared_agent = agent is not None  # given by the caller: every worker uses that one
        self.evaluator = evaluator or get_evaluator(loop, self.sandbox)
        # seeds, noise, keep rule, holdout, services; it reports seeds to the listeners through a callback
        self.measurer = Measurer(loop, self.evaluator, on_seed=self._seed)
        # Told what happens, through a read-only view (self.view), never this session; an object with only
        # some of the methods is taken too (the others do nothing).
        self.listeners: list[Listener] = [listener(x) for x in listeners or []]
        self.strategy = Strategy(loop)
        self.state_dir = repo.common_dir / "autoresearch"
        self.branch = ResearchBranch(repo, loop)
        # Not under .git: agents such as Claude Code refuse to edit anything below a .git folder.
        self.worktree_path = self.branch.worktree_path(0)
        self.remote = None if self.options.dry_run else Remote(repo, self.options.remote, loop.name)
        self.run_id = self.options.run_id or names.run_id()
        self.signals = Signals()
        self.journal = Journal(repo, loop.name, self.state_dir, self.remote, self.run_id, self.signals.hold)
        self.tree: Git | None = None  # worker 0's worktree
        self.warnings: list[str] = []
        self.base_behind = 0  # commits on the base branch the research branch lacks (rebase.behind)
        self.slots = SlotPool(slots_for(loop))
        # Worker and device go into the record when there is more than one of either, or a GPU.
        self.parallel = loop.workers > 1 or len(self.slots.slots) > 1 or self.slots.slots[0].device is not None
        self.journal.parallel = self.parallel
        self._trees: dict[int, Git] = {}
        self.reset_at: dict[int, str] = {}  # the commit each worker's worktree was last reset to
        self._agents: dict[int, Agent] = {0: self.agent}
        self._bound: dict[int, tuple[Measurer, Sandbox]] = {}  # by slot: evaluation bound to its device
        self._scheduler: Scheduler | None = None
        self._audience = Audience(self.listeners)
        self.view = RunView(
            loop=loop, record=lambda: self.journal.record, dry_run=self.options.dry_run, remote=self.options.remote,
            sandbox=self.sandbox.name, isolated=self.sandbox.isolated, workers=loop.workers, slots=self.slots,
            in_flight=lambda: dict(self.journal.in_flight), pushed=self._pushed, warn=self.warn)

    # -- what the listeners and the bot's other commands read ---------------------------------------
    @property
    def record(self) -> Record | None:
        """The loop's record (None before the run prepared it)."""
        return self.journal.record

    @record.setter
    def record(self, record: Record | None) -> None:
        self.journal.record = record

    @property
    def store(self) -> RecordStore:
        """Where the record lives (its ref)."""
        return self.journal.store

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        """Run experiments until a stop condition; record every attempt before the next starts."""
        with LoopLock(self.state_dir / f"{self.loop.name}.lock", self.loop.name), \
                self.signals.installed(), self.journal.tracking_children():
            record = baseline.prepare(self)
            baseline.warn_base_moved(self, record)  # a run's warning; a revert or a rebase has its own words
            state = decide.RunState()
            started = time.monotonic()
            summary = RunSummary(record=record, reason="")
            self.note("run_start", run_id=self.run_id, url=self.options.run_url,
                       sandbox=self.sandbox.name, dry_run=self.options.dry_run, **self.base_moved(),
                       guards=guards.rules(self.loop.guards),  # the PR body lists the guards in force
                       **self._workers_note(), **self.options.notes)
            self.tell(lambda x: x.on_start(self.view))

            def stop(in_flight: int) -> str | None:
                state.elapsed_s = time.monotonic() - started
                with self.journal.lock:
                    best = record.best.metric if record.best else None
                return start_reason(self.loop.budget, self.loop.metric, state, best, self.options.experiments,
                                    in_flight)

            def done(attempt: Attempt) -> None:
                summary.attempts.append(attempt)
                capped = attempt.experiment if attempt.extra.get(COST_CAPPED) else None
                state.count(attempt.status, attempt.cost_usd, capped=capped)
                self._drain()

            def measure_baseline() -> None:
                measured = baseline.checked(self)
                if measured.run_id == self.run_id:  # not another runner's, which it recorded first (baseline._taken)
                    summary.attempts.append(measured)

            self._scheduler = Scheduler(
                self.loop.workers, stop=stop, experiment=lambda worker: experiment.run(self, worker, state),
                done=done, needs_baseline=lambda: baseline.needed(self), baseline=measure_baseline,
                tick=self._drain, end_children=self.journal.end_children)
            for worker in range(1, self.loop.workers):  # made here, one at a time: `git worktree add` locks
                self.worktree(worker)
            try:
                reason = self._scheduler.run()
            except Interrupted:
                summary.reason = "interrupted by a signal"
                self.finish(summary.reason)
                raise
            except ArlError as exc:
                summary.reason = f"error: {exc.message}"
                self.finish(summary.reason)
                raise
            finally:
                self._scheduler = None
            summary.reason = reason
            tree, head = self.ready()[1], self.branch.head()
            if self.reset_at.get(0) != head:  # with workers, the first one's tree may be behind the final head
                tree.reset_hard(head)
                self.reset_at[0] = head
            with self.device(0) as (measurer, _):  # the final best's holdout holds a slot like any evaluation
                final = measurer.at_end(tree.root, record)
            self.finish(reason, **final)
            return summary

    def _workers_note(self) -> dict[str, object]:
        """For the run_start note (the PR body and the report read it): the workers and device slots."""
        if not self.parallel:
            return {}
        return {"workers": self.loop.workers, "slots": [s.label for s in self.slots.slots]}

    def adopt(self, make: Callable[[Git, str], str], *, mode: str, reason: str,
              trailers: dict[str, str] | None = None, extra: dict[str, object] | None = None,
              base: str | None = None) -> RunSummary:
        """Measure and record a change made by the bot, not the agent (a revert, a rebase): see baseline.adopt."""
        with LoopLock(self.state_dir / f"{self.loop.name}.lock", self.loop.name), self.signals.installed():
            record, attempt = baseline.adopt(self, make, mode=mode, reason=reason, trailers=trailers, extra=extra,
                                             base=base)
            summary = RunSummary(record=record, reason=f"{mode} recorded as experiment {attempt.experiment}",
                                 attempts=[attempt])
            self.finish(summary.reason)
            return summary

    # -- what the steps (baseline.py, experiment.py) use ----------------------------------------------
    def worktree(self, worker: int) -> Git:
        """A worker's worktree, made on first use."""
        if worker not in self._trees:
            self._trees[worker] = self.branch.worktree(worker)
        return self._trees[worker]

    def agent_for(self, worker: int) -> Agent:
        """Each worker's own agent (an agent may keep state between propose and observe), unless one was given."""
        if worker not in self._agents:
            self._agents[worker] = self.agent if self._shared_agent else get_agent(self.loop, self.sandbox)
        return self._agents[worker]

    @contextmanager
    def device(self, worker: int, work: Work | None = None) -> Iterator[tuple[Measurer, Sandbox]]:
        """A device slot for one evaluation, and the measurer and sandbox that see only its device."""
        with self.slots.hold(self.checkpoint) as slot:
            if work is not None:
                work.device = slot.label
            if self.parallel:
                self.journal.update(worker, device=slot.label)
            yield self._bound_to(slot)

    def _bound_to(self, slot: Slot) -> tuple[Measurer, Sandbox]:
        if not slot.env:
            return self.measurer, self.sandbox
        if slot.index not in self._bound:
            sandbox = DeviceSandbox(self.sandbox, slot)
            self._bound[slot.index] = (Measurer(self.loop, self.evaluator.using(sandbox), on_seed=self._seed), sandbox)
        return self._bound[slot.index]

    def where(self, work: Work) -> dict[str, object]:
        """Which worker and device ran an attempt (recorded when a loop has more than one of either)."""
        if not self.parallel:
            return {}
        return {"worker": work.worker, **({"device": work.device} if work.device else {})}

    def checkpoint(self) -> None:
        """Between phases: stop here once a signal stopped every worker."""
        if self._scheduler is not None:
            self._scheduler.check()

    def base_moved(self) -> dict[str, object]:
        """For the run_start note (the PR body reads it): how far the base branch is ahead, when it is."""
        record, _ = self.ready()
        return {"base_behind": self.base_behind, "base_branch": record.meta.base_branch} if self.base_behind else {}

    def append(self, attempt: Attempt, patch: str, worker: int | None = None, since: str | None = None) -> Attempt:
        """Record an attempt and, unless this is a dry run, push branch and record together."""
        attempt, moved = self.journal.append(attempt, patch, worker, since=since)
        if moved:
            self.branch_moved()
        self.told(attempt)
        return attempt

    def told(self, attempt: Attempt) -> None:
        """Count a recorded attempt in the view and tell the listeners."""
        self.view.counted(attempt)
        self.tell(lambda x: x.on_attempt(self.view, attempt))

    def branch_moved(self) -> None:
        """The push took in commits from elsewhere: check the new head out; the run re-measures it."""
        record, tree = self.ready()
        self.branch.forget()
        head = self.branch.head()
        self.reset_at.clear()  # every worker's tree resets to the new head before its next experiment
        if threading.current_thread() is threading.main_thread():
            tree.reset_hard(head)
            self.reset_at[0] = head
        self.branch.measure_drift(record.meta.base_sha, head)
        best = record.best
        if best is not None and best.sha == head:  # a recorded state: another runner's keep, or ours renumbered
            if best.run_id != self.run_id:
                self.warn(f"took in experiment {best.experiment}, kept by another runner ({head[:8]}); "
                          "experiments go on from it")
            return
        self.warn(f"{self.loop.branch} moved on {self.options.remote} (someone pushed to it); "
                  f"merged with this run's results at {head[:8]}, which is measured next")

    def note(self, kind: str, **data: object) -> None:
        """Add a note (run_start, run_end) to the record."""
        self.journal.note(kind, **data)

    def finish(self, reason: str, **data: object) -> None:
        """End the run: note why, push, tell the listeners."""
        self.note("run_end", reason=reason, run_id=self.run_id, **data)
        self.journal.push()
        self.tell(lambda x: x.on_end(self.view, reason))

    def ready(self) -> tuple[Record, Git]:
        """The record and worker 0's worktree, once prepared."""
        assert self.record is not None and self.tree is not None, "call run() first"
        return self.record, self.tree

    # -- telling the listeners (runview.Audience: on the run's thread, a worker's events queued) ----
    def warn(self, text: str) -> None:
        """Say something the user should know; listeners print it."""
        self.warnings.append(text)
        self.tell(lambda x: x.on_warning(self.view, text))

    def _seed(self, seed: int, result: SeedResult | None) -> None:
        """Tell the listeners a seed started (result None) or ended."""
        if result is None:
            self.tell(lambda x: x.on_seed(self.view, seed))
        else:
            error = result.error
            self.tell(lambda x: x.on_seed_done(self.view, seed, error))

    def phase(self, experiment: int, phase: str, work: Work | None = None) -> None:
        """Tell the listeners (and, with workers, the in-flight marker) what an experiment is doing now."""
        if self.parallel and work is not None:
            self.journal.update(work.worker, phase=phase)
            phase = f"{phase} (worker {work.worker}{', ' + work.device if work.device else ''})"
        self.tell(lambda x: x.on_phase(self.view, experiment, phase))

    def tell(self, event: Callable[[Listener], None]) -> None:
        """Tell every listener (queued when called from a worker's thread)."""
        self._audience.tell(event)

    def _drain(self) -> None:
        self._audience.drain()

    def _pushed(self) -> bool:
        """Whether the research branch has reached the remote (the view tells the PR listener)."""
        return self.remote is not None and self.repo.rev(self.remote.tracking_branch) is not None

