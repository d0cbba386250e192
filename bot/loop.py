"""One run of a research loop: baseline, then agent -> check -> evaluate -> keep or discard -> record.

Where each step lives: the scheduler (scheduler.py) hands experiments to workers, one at a time or
`workers` in flight; an experiment is planned here (strategy.py), run in its worker's worktree (the agent)
and in a device slot (slots.py: the evaluation), decided by the measurer and the guards (a keep measured
against a best that moved meanwhile is applied onto the new head and measured again), and recorded by
the journal (journal.py), which numbers attempts in the order they are recorded. The research branch
(branch.py) moves only by compare-and-swap.
"""

from __future__ import annotations

import dataclasses
import gc
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import decide, diffcheck, guards, names, noise, prompt, rebase, safefile, treecheck, validate
from .agents import Agent, AgentResult, AgentTask, get_agent
from .agents.base import COST_CAPPED
from .branch import WORKTREES, ResearchBranch
from .config import Config, Loop
from .errors import ArlError, Interrupted, RecordError
from .evaluate import Evaluator, Measurement, SeedResult, get_evaluator
from .git import Git
from .journal import Journal
from .lock import LoopLock
from .measurer import Measurer
from .record import Attempt, Meta, Record, Status
from .runners import StaleKeep
from .runview import Audience, Listener, RunView, listener
from .sandbox import Sandbox, choose_sandbox
from .scheduler import Scheduler, allowance, start_reason
from .signals import Signals
from .slots import DeviceSandbox, Slot, SlotPool, slots_for
from .store import RecordStore
from .strategy import Plan, Strategy
from .sync import Remote

__all__ = ["WORKTREES", "Listener", "RunOptions", "RunSummary", "Session", "now"]

INSTRUCTIONS_BYTES = 1_000_000  # a bigger instructions file is refused (it goes into every prompt)
STALE_ROUNDS = 3  # re-measures of one stale keep before it is discarded (the branch kept moving under it)


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


@dataclass
class _Work:
    """One experiment on one worker, as far as it got: what an interruption still records."""

    worker: int
    number: int  # provisional: the journal gives the final number when it records the attempt
    parent: str  # the head the experiment started from (a keep is committed on it)
    plan: Plan
    best: float
    started_at: str
    view: Record  # the record as the experiment saw it (a snapshot when workers run side by side)
    device: str = ""
    proposal: tuple[str, AgentResult, list[str], str] | None = None  # (start, result, files, patch)
    patch: str | None = None  # the change as recorded, once re-applied onto a newer head


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
        self._signals = Signals()
        self.journal = Journal(repo, loop.name, self.state_dir, self.remote, self.run_id, self._signals.hold)
        self.tree: Git | None = None  # worker 0's worktree
        self.warnings: list[str] = []
        self.base_behind = 0  # commits on the base branch the research branch lacks (rebase.behind)
        self.slots = SlotPool(slots_for(loop))
        # Worker and device go into the record when there is more than one of either, or a GPU.
        self.parallel = loop.workers > 1 or len(self.slots.slots) > 1 or self.slots.slots[0].device is not None
        self.journal.parallel = self.parallel
        self._trees: dict[int, Git] = {}
        self._at: dict[int, str] = {}  # the commit each worker's worktree was last reset to
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
                self._signals.installed(), self.journal.tracking_children():
            record = self._prepare()
            self._warn_base_moved(record)  # a run's warning; a revert or a rebase has its own words
            state = decide.RunState()
            started = time.monotonic()
            summary = RunSummary(record=record, reason="")
            self._note("run_start", run_id=self.run_id, url=self.options.run_url,
                       sandbox=self.sandbox.name, dry_run=self.options.dry_run, **self._base_moved(),
                       guards=guards.rules(self.loop.guards),  # the PR body lists the guards in force
                       **self._workers_note(), **self.options.notes)
            self._tell(lambda x: x.on_start(self.view))

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

            def baseline() -> None:
                summary.attempts.append(self._baseline_checked())

            self._scheduler = Scheduler(
                self.loop.workers, stop=stop, experiment=lambda worker: self._experiment(worker, state),
                done=done, needs_baseline=self._needs_baseline, baseline=baseline,
                tick=self._drain, end_children=self.journal.end_children)
            for worker in range(1, self.loop.workers):  # made here, one at a time: `git worktree add` locks
                self._tree(worker)
            try:
                reason = self._scheduler.run()
            except Interrupted:
                summary.reason = "interrupted by a signal"
                self._finish(summary.reason)
                raise
            except ArlError as exc:
                summary.reason = f"error: {exc.message}"
                self._finish(summary.reason)
                raise
            finally:
                self._scheduler = None
            summary.reason = reason
            tree, head = self._ready()[1], self.branch.head()
            if self._at.get(0) != head:  # with workers, the first one's tree may be behind the final head
                tree.reset_hard(head)
                self._at[0] = head
            with self._device(0) as (measurer, _):  # the final best's holdout holds a slot like any evaluation
                final = measurer.at_end(tree.root, record)
            self._finish(reason, **final)
            return summary

    def _needs_baseline(self) -> bool:
        """First run, or the branch moved outside the loop (a manual fix, a merge), or new guards."""
        if self.journal.moved_behind.is_set():  # a push behind took in commits: look at the new head here
            self.journal.moved_behind.clear()
            self._branch_moved()
        with self.journal.lock:
            record = self.journal.ready()
            return record.best is None or record.best.sha != self.branch.head() or \
                guards.unverified(record.best, self.loop.guards)

    def _baseline_checked(self) -> Attempt:
        """Measure what is there now, so every comparison is against a real number; stop if it fails."""
        baseline = self._baseline()
        if baseline.status != "baseline" and baseline.extra.get("guard_failed"):
            what = "the base" if baseline.description == "baseline" else \
                f"{self.loop.branch} as it is now"
            raise ArlError(  # a guard the base breaks could never be satisfied by a keep
                f"{what} fails guard `{baseline.extra['guard_failed']}`: {baseline.reason}",
                hint="fix it on the branch, or change that guard under `guards:` in the config")
        if baseline.status != "baseline":
            raise ArlError(
                f"the baseline evaluation failed: {baseline.reason}",
                hint="run `arl-bot eval` to see the evaluation's output and fix it first",
            )
        return baseline

    def _workers_note(self) -> dict[str, object]:
        """For the run_start note (the PR body and the report read it): the workers and device slots."""
        if not self.parallel:
            return {}
        return {"workers": self.loop.workers, "slots": [s.label for s in self.slots.slots]}

    def adopt(self, make: Callable[[Git, str], str], *, mode: str, reason: str,
              trailers: dict[str, str] | None = None, extra: dict[str, object] | None = None,
              base: str | None = None) -> RunSummary:
        """Measure and record a change made by the bot, not the agent (a revert, a rebase), kept whatever it scores.

        make(tree, head) stages the change in the research worktree and returns its description, or
        raises ArlError having changed nothing; then nothing is recorded either. With base (a rebase),
        the change brought that commit in: it becomes the loop's base before the measurement (its
        protected files are evaluated), the commit's second parent unless the head has it already, and
        the attempt is a re-measured baseline; a change that does not evaluate leaves the base as it was.
        """
        with LoopLock(self.state_dir / f"{self.loop.name}.lock", self.loop.name), self._signals.installed():
            record = self._prepare()
            _, tree = self._ready()
            head = self.branch.head()
            number = record.next_experiment
            description = make(tree, head)
            tree_sha = tree.write_tree()
            summary = RunSummary(record=record, reason="")
            old_meta = record.meta
            if base is not None:
                record.meta = dataclasses.replace(record.meta, base_sha=base)
                self.branch.measure_drift(base, tree_sha)
                self.base_behind = 0
            self._note("run_start", run_id=self.run_id, url=self.options.run_url, sandbox=self.sandbox.name,
                       dry_run=self.options.dry_run, mode=mode, **self._base_moved())
            self._tell(lambda x: x.on_start(self.view))
            best = record.best.metric if record.best else None
            started_at = now()
            self.journal.begin(0, description, started_at)
            self._phase(number, "evaluating")
            measured: dict[str, object] = {}
            with self._device(0) as (measurer, _):
                self.branch.restore_protected(tree, base or record.meta.base_sha)
                if base is None:
                    m = measurer.measure(tree.root, list(self.loop.evaluate.seeds), record.meta.base_sha)
                else:  # a new base: measured like a first baseline (noise, holdout) with the new base's files
                    m, measured = measurer.baseline(tree.root, base)
            status: Status = "keep" if base is None else "baseline"
            common = dict(experiment=number, metric=m.metric, description=description, parent=head,
                          best_before=best, seeds=m.per_seed, mode=mode, started_at=started_at,
                          eval_s=m.duration_s, eval_log=m.log, run_id=self.run_id,
                          extra={**measured, **guards.recorded(m), **(extra or {})})
            patch = tree.staged_patch(head)
            since = self.store.head()  # what the record goes back to when another runner's keep wins
            with self._signals.hold(), self.journal.writing():
                if m.metric is None:  # a change that does not evaluate is not put on the branch
                    record.meta = old_meta
                    tree.reset_hard(head)
                    attempt = Attempt(status="crash", reason=f"{reason}; it did not evaluate: {m.error}",
                                      **common)  # type: ignore[arg-type]
                else:
                    merged = [base] if base is not None and not self.repo.is_ancestor(base, head) else []
                    sha = tree.commit_tree(tree_sha, head, description, {
                        "Experiment": str(number), "Metric": repr(m.metric),
                        "Delta": repr(m.metric - best if best is not None else 0.0), "Status": status,
                        **(trailers or {})}, merged=merged)
                    if base is not None:
                        self.store.write_meta(record.meta)  # first: a run that dies next re-measures, on the new base
                    self.branch.move(sha, head)
                    tree.reset_hard(sha)
                    attempt = Attempt(status=status, sha=sha, reason=reason, **common)  # type: ignore[arg-type]
                try:
                    attempt = self._append(attempt, patch, worker=0, since=since)
                except StaleKeep as lost:  # the journal took the other runner's work in; ours is undone
                    self.branch.forget()
                    self.journal.end(0)
                    raise ArlError(
                        f"another runner kept a change on {self.loop.branch} ({lost.head[:8]}) while this {mode} "
                        "was being measured; nothing of it was recorded or pushed",
                        hint=f"run the {mode} again: it starts from the new head") from None
            summary.attempts.append(attempt)
            summary.reason = f"{mode} recorded as experiment {attempt.experiment}"
            self._finish(summary.reason)
            return summary

    def _prepare(self) -> Record:
        """Sync with the remote, find or create the branch, the worktree and the record."""
        if self.remote is not None:
            self.remote.pull()
        record = self.store.load()
        # The record lives as long as the run: keep its thousands of objects out of every GC pass.
        gc.freeze()
        branch_ref = self.branch.ref
        if record is None:
            base_branch = self.loop.base or self.repo.current_branch()
            if base_branch is None:
                raise ArlError("HEAD is detached: no base branch to start from",
                               hint="check out a branch, or set `base:` in the loop's config")
            base_sha = self.repo.rev(base_branch)
            if base_sha is None:
                raise ArlError(f"base branch {base_branch!r} has no commits",
                               hint="commit your project first")
            if self.repo.rev(branch_ref) is None:
                self.repo.move_ref(branch_ref, base_sha, None)
            record = self.store.create(Meta(
                loop=self.loop.name, base_branch=base_branch, base_sha=base_sha, created_at=now(),
                goal=self.loop.metric.goal, metric=self.loop.metric.name,
            ))
        elif self.repo.rev(branch_ref) is None:
            raise RecordError(
                f"the record exists but branch {self.loop.branch} does not", where=self.store.ref,
                hint=f"fetch the branch, or delete the record with `git update-ref -d {self.store.ref}`",
            )
        if self.repo.current_branch() == record.meta.base_branch and self.repo.dirty():
            self.warn("your checkout has uncommitted changes; they are not part of the base "
                      f"({record.meta.base_sha[:8]}) and the loop will not see them")
        if self.repo.current_branch() == self.loop.branch:
            self.warn(f"your checkout has {self.loop.branch} checked out: the loop moves that branch with each "
                      "keep, so your files will look changed; check out another branch while it runs")
        self.repo.exclude("/.arl-bot/")
        # Detached at the head (never the branch itself), repaired or made anew when the repository moved.
        self.tree = self._tree(0)
        self.record = record
        for attempt in self.journal.recover(self.branch):
            self._told(attempt)
        head = self.branch.head()
        self.tree.reset_hard(head)
        self._at[0] = head
        drifted = self.branch.measure_drift(record.meta.base_sha, head)
        if drifted:
            self.warn(f"the research branch changed protected paths ({', '.join(drifted[:5])}); "
                      f"every evaluation uses the base's version of them; {self._rebase_hint} makes them the new base")
        self.base_behind = rebase.behind(self.repo, record.meta.base_branch, head, self.options.remote)
        return record

    @property
    def _rebase_hint(self) -> str:
        return f"`arl-bot rebase --loop {self.loop.name}` (or `/autoresearch rebase` on the pull request)"

    def _warn_base_moved(self, record: Record) -> None:
        """Say at the start of a run that the base branch has commits the research branch lacks."""
        if self.base_behind:
            self.warn(f"{record.meta.base_branch} moved {self.base_behind} commit{'s' if self.base_behind > 1 else ''} "
                      f"ahead of the research branch, which still builds on {record.meta.base_sha[:8]}; "
                      f"{self._rebase_hint} brings them in")

    def _baseline(self) -> Attempt:
        """Measure the branch as it is: experiment 0 (or the next number, after a failed baseline)."""
        record, tree = self._ready()
        head = self.branch.head()
        if self._at.get(0) != head:
            tree.reset_hard(head)
            self._at[0] = head
        started_at = now()
        number = self.journal.begin(0, "baseline", started_at).number
        self.branch.restore_protected(tree, record.meta.base_sha)  # a baseline too is judged by the base's code
        self._phase(number, "evaluating baseline")
        with self._device(0) as (measurer, sandbox):
            measurement, measured = measurer.baseline(tree.root, record.meta.base_sha)
            ok = measurement.metric is not None
            reason = measurement.error
            measured = {**measured, **guards.recorded(measurement)}
            if ok and self.loop.guards.active:  # the base must pass its own guards, or no keep ever could
                self._phase(number, "guards")
                judged = guards.judge(self.loop, sandbox, tree.root, measurement, None)
                measured.update(judged.extra(), **({} if judged.ok else {"guard_failed": judged.failed}))
                ok, reason = judged.ok, judged.reason
        first = record.baseline is None
        description = "baseline" if first else f"re-measured {head[:8]}: " + (
            "the branch moved outside the loop" if record.best is None or record.best.sha != head
            else "not yet held to the guards in force")
        attempt = Attempt(
            experiment=number, status="baseline" if ok else "crash", metric=measurement.metric,
            description=description, parent=head, sha=head if ok else None,
            seeds=measurement.per_seed, reason=reason, mode="baseline",
            started_at=started_at, eval_s=measurement.duration_s, eval_log=measurement.log, run_id=self.run_id,
            extra=measured,
        )
        tree.reset_hard(head)
        attempt = self._append(attempt, "", worker=0)
        settings = self.loop.evaluate
        advice = noise.baseline_advice(self.loop.keep.rule, len(settings.seeds) * settings.baseline_repeats,
                                       measured.get("noise", {}).get("sigma"), self.loop.metric.min_delta,
                                       self.loop.keep.k) if ok else None
        if advice:
            self.warn(advice)
        return attempt

    # -- one experiment -------------------------------------------------------------------------------
    def _experiment(self, worker: int, state: decide.RunState) -> Attempt:
        """One attempt on one worker, from the agent's edit to the record."""
        tree = self._tree(worker)
        with self.journal.lock:  # planned against one consistent record; the agent runs outside the lock
            record = self.journal.ready()
            parent = self.branch.head()
            best = record.best
            assert best is not None and best.metric is not None
            plan = self.strategy.plan(record, parent)
            view = record if self.loop.workers == 1 else _snapshot(record)
            started_at = now()
            number = self.journal.begin(worker, "", started_at).number
        work = _Work(worker, number, parent, plan, best.metric, started_at, view)
        workdir = Path(tempfile.mkdtemp(prefix=f"arl-{self.loop.name}-{number}-"))
        try:
            return self._attempt(work, tree, state, workdir)
        except Interrupted:
            tree.reset_hard(self.branch.head())
            self._at.pop(worker, None)
            if worker not in self.journal.in_flight:  # the signal landed after the attempt was recorded
                raise
            # An agent that had finished paid for its change: keep the change and its description,
            # so `arl-bot results --diff` shows what was about to be measured.
            nothing: tuple[str, AgentResult, list[str], str] = (parent, AgentResult(""), [], "")
            start, result, files, patch = work.proposal or nothing
            after = "; the agent had finished: its change is recorded, not measured" if work.proposal else ""
            self._append(Attempt(
                experiment=number, status="interrupted", metric=None, description=result.description,
                parent=start, best_before=best.metric, reason=f"interrupted by SIGINT/SIGTERM{after}",
                mode=plan.mode, files=files, cost_usd=result.cost_usd, tokens_in=result.tokens_in,
                tokens_out=result.tokens_out, started_at=started_at, run_id=self.run_id,
                extra={**result.extra, **self._where(work)},
            ), patch, worker=worker)
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _attempt(self, work: _Work, tree: Git, state: decide.RunState, workdir: Path) -> Attempt:
        """The agent edits plan.start's tree; a keep becomes a commit on the head, keeping history linear."""
        number, parent, record, agent = work.number, work.parent, work.view, self._agent(work.worker)
        mode, start = work.plan.mode, work.plan.start
        if self._at.get(work.worker) != parent:  # another worker kept something since this tree was reset
            tree.reset_hard(parent)
            self._at[work.worker] = parent
        if start != parent:  # files and index only: HEAD stays at the head the keep is committed on
            tree.checkout_tree(start)
            self._at.pop(work.worker, None)
        with self.journal.lock:  # the prompt reads the record (a snapshot when workers run side by side)
            text = prompt.render(self.loop, self._instructions(tree), record, mode, number, parent=start)
            redirects, history = prompt.notes(record), tuple(record.attempts)
        prompt_file = workdir / "prompt.md"
        prompt_file.write_text(text, encoding="utf-8")
        with self.journal.lock:
            others = len(self.journal.in_flight) - 1
        left = allowance(self.loop.budget, state, others)
        self._phase(number, "agent", work)
        t0 = time.monotonic()
        result = agent.propose(AgentTask(
            tree=tree.root, prompt=text, prompt_file=prompt_file, experiment=number, mode=mode,
            parent=start, timeout=self.loop.agent.timeout, cost_limit_usd=left,
            redirects=redirects, history=history,
        ))
        agent_s = time.monotonic() - t0
        self._checkpoint()
        self._at.pop(work.worker, None)  # the agent changed the files: reset before the next experiment
        planted = tree.hazards(start)  # before git looks: it would read a nested repository's config
        if not planted:
            tree.stage_all()
        changes = [] if planted else tree.staged_changes(start)
        patch = tree.staged_patch(start) if changes else ""
        work.proposal = (start, result, [c.path for c in changes], patch)

        def finish(status: Status, reason: str, measurement: Measurement | None = None,
                   sha: str | None = None, measured: dict[str, object] | None = None) -> Attempt:
            if sha is None:
                self._checkpoint()  # an interrupted phase is recorded as interrupted, not as its failure
            attempt = Attempt(
                experiment=number, status=status,
                metric=measurement.metric if measurement else None,
                description=result.description, parent=start, sha=sha, best_before=work.best,
                seeds=measurement.per_seed if measurement else {}, reason=reason, mode=mode,
                files=[c.path for c in changes], cost_usd=result.cost_usd, tokens_in=result.tokens_in,
                tokens_out=result.tokens_out, started_at=work.started_at, agent_s=round(agent_s, 3),
                eval_s=round(measurement.duration_s, 3) if measurement else 0.0,
                agent_log=result.log, eval_log=measurement.log if measurement else "",
                run_id=self.run_id, extra={**result.extra, **(measured or {}), **guards.recorded(measurement),
                                           **self._where(work)},
            )
            if sha is None:
                head = self.branch.head()
                tree.reset_hard(head)
                self._at[work.worker] = head
            attempt = self._append(attempt, work.patch if work.patch is not None else patch, worker=work.worker)
            agent.observe(number, status, attempt.metric)
            return attempt

        if planted:
            return finish("invalid", treecheck.reason(planted))
        if not result.ok:
            return finish("crash", result.error)
        problem = diffcheck.violation(changes, self.loop) or validate.failure(tree.root, changes, self.loop)
        if problem is not None:
            return finish("invalid", problem)
        tree.clean_ignored()
        self.branch.restore_protected(tree, record.meta.base_sha)
        status, reason, measurement, measured = self._judge(work, tree, record)
        stale: dict[str, object] = {}
        for _ in range(STALE_ROUNDS + 1):
            if status != "keep":
                break
            try:
                with self._signals.hold(), self.journal.writing():
                    self.branch.forget()  # a push behind may have moved it (another runner's keep, a manual fix)
                    head = self.branch.head()
                    if head == parent:
                        # The index is what passed the checks; no phase can write it (it lives under .git,
                        # read-only in the sandbox), so its tree, taken now, is what was evaluated, less what
                        # keep_tree puts back.
                        tree_sha = self.branch.keep_tree(tree, parent)
                        final = self.journal.ready().next_experiment  # the number the journal gives it
                        sha = tree.commit_tree(tree_sha, parent, result.description, {
                            "Experiment": str(final), "Metric": repr(measurement.metric),
                            "Delta": repr(measurement.metric - work.best if measurement.metric is not None else 0.0),
                            "Status": "keep", "Seeds": ",".join(str(s) for s in self.loop.evaluate.seeds),
                            "Cost": f"{result.cost_usd:.4f}",
                        })
                        self.branch.move(sha, parent)
                        tree.reset_hard(sha)
                        self._at[work.worker] = sha
                        return finish("keep", reason, measurement, sha, measured={**measured, **stale})
                    newest = self.journal.ready().best
            except StaleKeep as lost:  # another runner's keep reached the remote first; the journal took it in
                self.branch.forget()
                head = lost.head
                with self.journal.lock:
                    newest = self.journal.ready().best
            # Another worker or runner kept something since this one started: it was measured against a stale best.
            assert newest is not None and newest.metric is not None
            kept_meanwhile = f"experiment {newest.experiment} ({(newest.sha or head)[:8]})"
            candidate = self.branch.keep_tree(tree, parent)
            if self.branch.onto(tree, candidate, parent, head) is None:
                reason = (f"{reason}, but against a stale best: {kept_meanwhile} was kept meanwhile and this "
                          "change does not apply onto it (they change the same lines)")
                return finish("discard", reason, measurement, measured={**measured, **stale})
            stale = {"stale": {"first_metric": measurement.metric, "measured_against": work.best,
                               "onto": head, "onto_experiment": newest.experiment}}
            with self.journal.lock:
                record = self.journal.ready() if self.loop.workers == 1 else _snapshot(self.journal.ready())
            work.view, work.parent, work.best = record, head, newest.metric
            work.patch = tree.staged_patch(head)
            parent = head
            self.branch.restore_protected(tree, record.meta.base_sha)
            status, reason, measurement, measured = self._judge(work, tree, record)
            reason = f"re-measured on top of {kept_meanwhile}: {reason}"
        if status == "keep":  # the branch moved under it every time
            status, reason = "discard", f"{reason}; but the branch kept moving ({STALE_ROUNDS} re-measures)"
        return finish(status, reason, measurement, measured={**measured, **stale})

    def _judge(self, work: _Work, tree: Git, record: Record) -> tuple[Status, str, Measurement, dict[str, object]]:
        """Evaluate the worktree in a device slot, then the keep rule and (for a would-be keep) the guards."""
        with self._device(work.worker, work) as (measurer, sandbox):
            self._phase(work.number, "evaluating", work)
            verdict = measurer.candidate(tree.root, record)
            measurement, reason = verdict.measurement, verdict.reason
            status: Status = "keep" if verdict.status == "keep" else "crash" if verdict.status == "crash" else "discard"
            measured = dict(verdict.extra)
            if status == "keep" and self.loop.guards.active:  # only a would-be keep pays for its checks
                self._phase(work.number, "guards", work)
                judged = guards.judge(self.loop, sandbox, tree.root, measurement, record.best)
                measured.update(judged.extra())
                if not judged.ok:
                    status, reason = "discard", f"{reason}; but {judged.reason}"
        return status, reason, measurement, measured

    # -- pieces ---------------------------------------------------------------------------------------
    def _tree(self, worker: int) -> Git:
        if worker not in self._trees:
            self._trees[worker] = self.branch.worktree(worker)
        return self._trees[worker]

    def _agent(self, worker: int) -> Agent:
        """Each worker's own agent (an agent may keep state between propose and observe), unless one was given."""
        if worker not in self._agents:
            self._agents[worker] = self.agent if self._shared_agent else get_agent(self.loop, self.sandbox)
        return self._agents[worker]

    @contextmanager
    def _device(self, worker: int, work: _Work | None = None) -> Iterator[tuple[Measurer, Sandbox]]:
        """A device slot for one evaluation, and the measurer and sandbox that see only its device."""
        with self.slots.hold(self._checkpoint) as slot:
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

    def _where(self, work: _Work) -> dict[str, object]:
        """Which worker and device ran an attempt (recorded when a loop has more than one of either)."""
        if not self.parallel:
            return {}
        return {"worker": work.worker, **({"device": work.device} if work.device else {})}

    def _checkpoint(self) -> None:
        """Between phases: stop here once a signal stopped every worker."""
        if self._scheduler is not None:
            self._scheduler.check()

    def _base_moved(self) -> dict[str, object]:
        """For the run_start note (the PR body reads it): how far the base branch is ahead, when it is."""
        record, _ = self._ready()
        return {"base_behind": self.base_behind, "base_branch": record.meta.base_branch} if self.base_behind else {}

    def _instructions(self, tree: Git | None = None) -> str:
        tree = tree or self._ready()[1]
        try:  # on the research branch, which agents edit: never through a link, never unbounded
            return safefile.text_untrusted(tree.root, self.loop.instructions, INSTRUCTIONS_BYTES)
        except safefile.MissingFileError:
            self.warn(f"instructions file {self.loop.instructions} not found on the research branch")
        except safefile.UntrustedFileError as exc:
            self.warn(f"instructions file refused: {exc.message}; using the default instructions")
        return f"Improve the metric `{self.loop.metric.name}`."

    def _append(self, attempt: Attempt, patch: str, worker: int | None = None, since: str | None = None) -> Attempt:
        """Record an attempt and, unless this is a dry run, push branch and record together."""
        attempt, moved = self.journal.append(attempt, patch, worker, since=since)
        if moved:
            self._branch_moved()
        self._told(attempt)
        return attempt

    def _told(self, attempt: Attempt) -> None:
        self.view.counted(attempt)
        self._tell(lambda x: x.on_attempt(self.view, attempt))

    def _branch_moved(self) -> None:
        """The push took in commits from elsewhere: check the new head out; the run re-measures it."""
        record, tree = self._ready()
        self.branch.forget()
        head = self.branch.head()
        self._at.clear()  # every worker's tree resets to the new head before its next experiment
        if threading.current_thread() is threading.main_thread():
            tree.reset_hard(head)
            self._at[0] = head
        self.branch.measure_drift(record.meta.base_sha, head)
        best = record.best
        if best is not None and best.sha == head:  # a recorded state: another runner's keep, or ours renumbered
            if best.run_id != self.run_id:
                self.warn(f"took in experiment {best.experiment}, kept by another runner ({head[:8]}); "
                          "experiments go on from it")
            return
        self.warn(f"{self.loop.branch} moved on {self.options.remote} (someone pushed to it); "
                  f"merged with this run's results at {head[:8]}, which is measured next")

    def _note(self, kind: str, **data: object) -> None:
        self.journal.note(kind, **data)

    def _finish(self, reason: str, **data: object) -> None:
        self._note("run_end", reason=reason, run_id=self.run_id, **data)
        self.journal.push()
        self._tell(lambda x: x.on_end(self.view, reason))

    def _ready(self) -> tuple[Record, Git]:
        assert self.record is not None and self.tree is not None, "call run() first"
        return self.record, self.tree

    # -- telling the listeners (runview.Audience: on the run's thread, a worker's events queued) ----
    def warn(self, text: str) -> None:
        """Say something the user should know; listeners print it."""
        self.warnings.append(text)
        self._tell(lambda x: x.on_warning(self.view, text))

    def _seed(self, seed: int, result: SeedResult | None) -> None:
        """Tell the listeners a seed started (result None) or ended."""
        if result is None:
            self._tell(lambda x: x.on_seed(self.view, seed))
        else:
            error = result.error
            self._tell(lambda x: x.on_seed_done(self.view, seed, error))

    def _phase(self, experiment: int, phase: str, work: _Work | None = None) -> None:
        if self.parallel and work is not None:
            self.journal.update(work.worker, phase=phase)
            phase = f"{phase} (worker {work.worker}{', ' + work.device if work.device else ''})"
        self._tell(lambda x: x.on_phase(self.view, experiment, phase))

    def _tell(self, event: Callable[[Listener], None]) -> None:
        self._audience.tell(event)

    def _drain(self) -> None:
        self._audience.drain()

    def _pushed(self) -> bool:
        """Whether the research branch has reached the remote (the view tells the PR listener)."""
        return self.remote is not None and self.repo.rev(self.remote.tracking_branch) is not None


def _snapshot(record: Record) -> Record:
    """A copy of the record one experiment reads while other workers append to the original."""
    return Record(meta=record.meta, attempts=list(record.attempts), notes=list(record.notes))
