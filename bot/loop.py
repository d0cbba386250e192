"""One run of a research loop: baseline, then agent -> check -> evaluate -> keep or discard -> record."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Protocol

from . import decide, diffcheck, guards, names, noise, process, prompt, rebase, safefile, treecheck, validate
from .agents import Agent, AgentResult, AgentTask, get_agent
from .config import Config, Loop
from .errors import ArlError, Interrupted, RecordError
from .evaluate import Evaluator, Measurement, SeedResult, get_evaluator
from .git import Git
from .globs import matches_any
from .lock import LoopLock
from .measurer import Measurer
from .record import Attempt, Meta, Note, Record, Status
from .sandbox import Sandbox, choose_sandbox
from .store import RecordStore
from .strategy import Plan, Strategy
from .sync import Remote

WORKTREES = ".arl-bot/worktrees"  # inside the checkout, hidden from `git status` by .git/info/exclude
INSTRUCTIONS_BYTES = 1_000_000  # a bigger instructions file is refused (it goes into every prompt)


@dataclass(frozen=True)
class RunOptions:
    """How this run goes."""

    experiments: int | None = None  # overrides budget.experiments for this run
    dry_run: bool = False  # push nothing, call no API
    remote: str = "origin"
    run_id: str = ""
    run_url: str = ""
    notes: dict[str, object] = field(default_factory=dict)  # more run_start data (a job chain's budget so far)


class Listener(Protocol):
    """Told what happens during a run (terminal progress, the pull request, the job summary)."""

    def on_start(self, session: Session) -> None: ...
    def on_phase(self, session: Session, experiment: int, phase: str) -> None: ...
    def on_attempt(self, session: Session, attempt: Attempt) -> None: ...
    def on_end(self, session: Session, reason: str) -> None: ...


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
    """Runs one loop in its own worktree; the user's checkout is never touched."""

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
        listeners: list[Listener] | None = None,
    ) -> None:
        self.repo = repo
        self.config = config
        self.loop = loop
        self.options = options or RunOptions()
        self.sandbox = sandbox or choose_sandbox(loop)
        self.agent = agent or get_agent(loop, self.sandbox)
        self.evaluator = evaluator or get_evaluator(loop, self.sandbox)
        # seeds, noise, keep rule, holdout, services; it reports seeds to the listeners through a callback
        self.measurer = Measurer(loop, self.evaluator, on_seed=self._seed)
        self.listeners = list(listeners or [])
        self.strategy = Strategy(loop)
        self.state_dir = repo.common_dir / "autoresearch"
        # Not under .git: agents such as Claude Code refuse to edit anything below a .git folder.
        self.worktree_path = repo.root / WORKTREES / loop.name
        self.store = RecordStore(repo, loop.name)
        self.remote = None if self.options.dry_run else Remote(repo, self.options.remote, loop.name)
        self.run_id = self.options.run_id or names.run_id()
        self.record: Record | None = None
        self.tree: Git | None = None
        self.warnings: list[str] = []
        self._inflight = self.state_dir / f"{loop.name}.inflight.json"
        self._signals = _Signals()
        # what the agent of the experiment in progress finished with: (start, result, files, patch)
        self._proposal: tuple[str, AgentResult, list[str], str] | None = None
        self._drifted: list[str] = []  # protected paths the branch changed outside the loop
        self._branch_head: str | None = None  # cached: only this run moves the branch while it holds the lock
        self.base_behind = 0  # commits on the base branch the research branch lacks (rebase.behind)

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        """Run experiments until a stop condition; record every attempt before the next starts."""
        with LoopLock(self.state_dir / f"{self.loop.name}.lock", self.loop.name), \
                self._signals.installed(), self._tracking_children():
            record = self._prepare()
            self._warn_base_moved(record)  # a run's warning; a revert or a rebase has its own words
            state = decide.RunState()
            started = time.monotonic()
            summary = RunSummary(record=record, reason="")
            self._note("run_start", run_id=self.run_id, url=self.options.run_url,
                       sandbox=self.sandbox.name, dry_run=self.options.dry_run, **self._base_moved(),
                       guards=guards.rules(self.loop.guards),  # the PR body lists the guards in force
                       **self.options.notes)
            self._emit("on_start")
            try:
                while True:
                    if record.best is None or record.best.sha != self._head() or \
                            guards.unverified(record.best, self.loop.guards):
                        # First run, or the branch moved outside the loop (a manual fix, a merge):
                        # measure what is there now, so every comparison is against a real number.
                        baseline = self._baseline()
                        summary.attempts.append(baseline)
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
                    state.elapsed_s = time.monotonic() - started
                    best = record.best.metric if record.best else None
                    reason = decide.stop_reason(self.loop.budget, self.loop.metric, state, best,
                                                self.options.experiments)
                    if reason is not None:
                        break
                    attempt = self._experiment(state)
                    summary.attempts.append(attempt)
                    state.count(attempt.status, attempt.cost_usd)
            except Interrupted:
                summary.reason = "interrupted by a signal"
                self._finish(summary.reason)
                raise
            except ArlError as exc:
                summary.reason = f"error: {exc.message}"
                self._finish(summary.reason)
                raise
            summary.reason = reason
            self._finish(reason, **self.measurer.at_end(self._ready()[1].root, record))
            return summary

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
            head = self._head()
            number = record.next_experiment
            description = make(tree, head)
            tree_sha = tree.write_tree()
            summary = RunSummary(record=record, reason="")
            old_meta = record.meta
            if base is not None:
                record.meta = dataclasses.replace(record.meta, base_sha=base)
                self._drifted = self._protected_drift(base, tree_sha)
                self.base_behind = 0
            self._note("run_start", run_id=self.run_id, url=self.options.run_url, sandbox=self.sandbox.name,
                       dry_run=self.options.dry_run, mode=mode, **self._base_moved())
            self._emit("on_start")
            best = record.best.metric if record.best else None
            self._mark_inflight(number, description)
            self._phase(number, "evaluating")
            measured: dict[str, object] = {}
            if base is None:
                m = self._measure(number)
            else:  # a new base: measured like a first baseline (noise, holdout) with the new base's files
                self._restore_protected(tree, base)
                m, measured = self.measurer.baseline(tree.root, base)
            status: Status = "keep" if base is None else "baseline"
            common = dict(experiment=number, metric=m.metric, description=description, parent=head,
                          best_before=best, seeds=m.per_seed, mode=mode, started_at=now(), eval_s=m.duration_s,
                          eval_log=m.log, run_id=self.run_id,
                          extra={**measured, **guards.recorded(m), **(extra or {})})
            patch = tree.staged_patch(head)
            with self._signals.hold():
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
                    self._move_branch(sha, head)
                    tree.reset_hard(sha)
                    attempt = Attempt(status=status, sha=sha, reason=reason, **common)  # type: ignore[arg-type]
                self._append(attempt, patch)
            summary.attempts.append(attempt)
            summary.reason = f"{mode} recorded as experiment {number}"
            self._finish(summary.reason)
            return summary

    def _prepare(self) -> Record:
        """Sync with the remote, find or create the branch, the worktree and the record."""
        if self.remote is not None:
            self.remote.pull()
        record = self.store.load()
        # The record lives as long as the run: keep its thousands of objects out of every GC pass.
        gc.freeze()
        branch_ref = names.branch_ref(self.loop.name)
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
        self.repo.exclude(f"/{WORKTREES}/")
        # Detached at the head (never the branch itself), repaired or made anew when the repository moved.
        self.tree = self.repo.research_worktree(self.worktree_path, self._head())
        self.record = record
        self._recover(record)
        head = self._head()
        self.tree.reset_hard(head)
        self._drifted = self._protected_drift(record.meta.base_sha, head)
        if self._drifted:
            self.warn(f"the research branch changed protected paths ({', '.join(self._drifted[:5])}); "
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

    def _recover(self, record: Record) -> None:
        """Bring the record level with the branch after a run that died between the two."""
        known = {a.experiment for a in record.attempts}
        for sha, subject, trailers in self.repo.commit_trailers(self.loop.branch, record.meta.base_sha):
            number = int(trailers.get("Experiment", "-1"))
            if number < 0 or number in known:
                continue
            metric = float(trailers["Metric"]) if "Metric" in trailers else None
            best = record.best.metric if record.best else None
            self._append(Attempt(
                experiment=number, status="keep", metric=metric, description=subject,
                parent=self.repo.rev(f"{sha}^") or "", sha=sha, best_before=best,
                reason="recovered from the branch: the run that made it died before recording it",
                started_at=now(), run_id=self.run_id,
            ), self.repo.run("show", "--format=", "--binary", sha, strip=False))
        if self._inflight.exists():
            try:
                info = json.loads(self._inflight.read_text())
            except ValueError:
                info = {}
            for entry in info.get("groups", []):
                # Children of a run killed by SIGKILL: end them before they touch the tree again, but only
                # groups that are provably still ours (a bare id from an older marker proves nothing).
                if isinstance(entry, list) and len(entry) == 2 and process.still_ours(int(entry[0]), str(entry[1])):
                    process.kill_group(int(entry[0]))
            number = int(info.get("experiment", -1))
            if number >= 0 and record.attempt(number) is None and number >= record.next_experiment:
                head = self._head()
                self._append(Attempt(
                    experiment=number, status="interrupted", metric=None,
                    description=str(info.get("description", "")), parent=head,
                    best_before=record.best.metric if record.best else None,
                    reason="the bot was killed during this experiment (found on the next start)",
                    started_at=str(info.get("started_at", "")), run_id=str(info.get("run_id", "")),
                ), "")
            self._inflight.unlink(missing_ok=True)

    def _baseline(self) -> Attempt:
        """Measure the branch as it is: experiment 0 (or the next number, after a failed baseline)."""
        record, tree = self._ready()
        number = record.next_experiment
        head = self._head()
        started_at = now()  # before the measurement: the record's started_at is when an attempt began
        self._mark_inflight(number, "baseline")
        self._restore_protected(tree, record.meta.base_sha)  # a baseline too is judged by the base's code
        self._phase(number, "evaluating baseline")
        measurement, measured = self.measurer.baseline(tree.root, record.meta.base_sha)
        ok = measurement.metric is not None
        reason = measurement.error
        measured = {**measured, **guards.recorded(measurement)}
        if ok and self.loop.guards.active:  # the base must pass its own guards, or no keep ever could
            self._phase(number, "guards")
            judged = guards.judge(self.loop, self.sandbox, tree.root, measurement, None)
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
        self._append(attempt, "")
        settings = self.loop.evaluate
        advice = noise.baseline_advice(self.loop.keep.rule, len(settings.seeds) * settings.baseline_repeats,
                                       measured.get("noise", {}).get("sigma"), self.loop.metric.min_delta,
                                       self.loop.keep.k) if ok else None
        if advice:
            self.warn(advice)
        return attempt

    def _experiment(self, state: decide.RunState) -> Attempt:
        """One attempt, from the agent's edit to the record."""
        record, tree = self._ready()
        number = record.next_experiment
        parent = self._head()
        best = record.best
        assert best is not None and best.metric is not None
        plan = self.strategy.plan(record, parent)
        started_at = now()
        self._mark_inflight(number, "")
        workdir = Path(tempfile.mkdtemp(prefix=f"arl-{self.loop.name}-{number}-"))
        self._proposal = None
        try:
            return self._attempt(number, parent, plan, best.metric, started_at, state, workdir)
        except Interrupted:
            tree.reset_hard(self._head())
            if record.attempt(number) is not None:  # the signal landed after the attempt was recorded
                raise
            # An agent that had finished paid for its change: keep the change and its description,
            # so `arl-bot results --diff` shows what was about to be measured.
            nothing: tuple[str, AgentResult, list[str], str] = (parent, AgentResult(""), [], "")
            start, result, files, patch = self._proposal or nothing
            after = "; the agent had finished: its change is recorded, not measured" if self._proposal else ""
            self._append(Attempt(
                experiment=number, status="interrupted", metric=None, description=result.description,
                parent=start, best_before=best.metric, reason=f"interrupted by SIGINT/SIGTERM{after}",
                mode=plan.mode, files=files, cost_usd=result.cost_usd, tokens_in=result.tokens_in,
                tokens_out=result.tokens_out, started_at=started_at, run_id=self.run_id, extra=dict(result.extra),
            ), patch)
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _attempt(self, number: int, parent: str, plan: Plan, best: float, started_at: str,
                 state: decide.RunState, workdir: Path) -> Attempt:
        """The agent edits plan.start's tree; a keep becomes a commit on the head, keeping history linear."""
        record, tree = self._ready()
        mode, start = plan.mode, plan.start
        if start != parent:  # files and index only: HEAD stays at the head the keep is committed on
            tree.checkout_tree(start)
        text = prompt.render(self.loop, self._instructions(), record, mode, number, parent=start)
        prompt_file = workdir / "prompt.md"
        prompt_file.write_text(text, encoding="utf-8")
        left = None
        if self.loop.budget.cost_usd is not None:
            left = max(0.0, self.loop.budget.cost_usd - state.cost_usd)
        self._phase(number, "agent")
        t0 = time.monotonic()
        result = self.agent.propose(AgentTask(
            tree=tree.root, prompt=text, prompt_file=prompt_file, experiment=number, mode=mode,
            parent=start, timeout=self.loop.agent.timeout, cost_limit_usd=left,
            redirects=prompt.notes(record), history=tuple(record.attempts),
        ))
        agent_s = time.monotonic() - t0
        planted = tree.hazards(start)  # before git looks: it would read a nested repository's config
        if not planted:
            tree.stage_all()
        changes = [] if planted else tree.staged_changes(start)
        patch = tree.staged_patch(start) if changes else ""
        self._proposal = (start, result, [c.path for c in changes], patch)

        def finish(status: Status, reason: str, measurement: Measurement | None = None,
                   sha: str | None = None, measured: dict[str, object] | None = None) -> Attempt:
            attempt = Attempt(
                experiment=number, status=status,
                metric=measurement.metric if measurement else None,
                description=result.description, parent=start, sha=sha, best_before=best,
                seeds=measurement.per_seed if measurement else {}, reason=reason, mode=mode,
                files=[c.path for c in changes], cost_usd=result.cost_usd, tokens_in=result.tokens_in,
                tokens_out=result.tokens_out, started_at=started_at, agent_s=round(agent_s, 3),
                eval_s=round(measurement.duration_s, 3) if measurement else 0.0,
                agent_log=result.log, eval_log=measurement.log if measurement else "",
                run_id=self.run_id, extra={**result.extra, **(measured or {}), **guards.recorded(measurement)},
            )
            if sha is None:
                tree.reset_hard(parent)
            self._append(attempt, patch)
            self.agent.observe(number, status, attempt.metric)
            return attempt

        if planted:
            return finish("invalid", treecheck.reason(planted))
        if not result.ok:
            return finish("crash", result.error)
        problem = diffcheck.violation(changes, self.loop) or validate.failure(tree.root, changes, self.loop)
        if problem is not None:
            return finish("invalid", problem)
        tree.clean_ignored()
        self._restore_protected(tree, record.meta.base_sha)
        self._phase(number, "evaluating")
        verdict = self.measurer.candidate(tree.root, record)
        measurement, status, reason = verdict.measurement, verdict.status, verdict.reason
        measured = dict(verdict.extra)
        if status == "keep" and self.loop.guards.active:  # only a would-be keep pays for its checks
            self._phase(number, "guards")
            judged = guards.judge(self.loop, self.sandbox, tree.root, measurement, record.best)
            measured.update(judged.extra())
            if not judged.ok:
                status, reason = "discard", f"{reason}; but {judged.reason}"
        if status != "keep":
            return finish(status, reason, measurement, measured=measured)
        with self._signals.hold():
            # The index is what passed the checks; no phase can write it (it lives under .git, read-only
            # in the sandbox), so its tree, taken now, is what was evaluated, less what _keep_tree puts back.
            tree_sha = self._keep_tree(tree, parent)
            sha = tree.commit_tree(tree_sha, parent, result.description, {
                "Experiment": str(number), "Metric": repr(measurement.metric),
                "Delta": repr(measurement.metric - best if measurement.metric is not None else 0.0),
                "Status": "keep", "Seeds": ",".join(str(s) for s in self.loop.evaluate.seeds),
                "Cost": f"{result.cost_usd:.4f}",
            })
            self._move_branch(sha, parent)
            tree.reset_hard(sha)
            return finish("keep", reason, measurement, sha, measured=measured)

    # -- pieces ---------------------------------------------------------------------------------------
    def _measure(self, number: int) -> Measurement:
        record, tree = self._ready()
        self._restore_protected(tree, record.meta.base_sha)
        # services up (from the base's files), seeds in parallel
        return self.measurer.measure(tree.root, list(self.loop.evaluate.seeds), record.meta.base_sha)

    def _restore_protected(self, tree: Git, base_sha: str) -> None:
        """Make every protected path the base's, so the evaluation code is always the base's.

        Agents cannot change protected paths (the diff check refuses it), so only commits made on
        the research branch by other means can: those are found once per run, in `_prepare`.
        """
        if self._drifted:
            tree.restore_paths(base_sha, self._drifted)

    def _keep_tree(self, tree: Git, parent: str) -> str:
        """The tree a keep commits: the head's, with the editable paths as they were evaluated.

        Protected paths were made the base's for the evaluation; committing them would revert what a
        person brought into the branch (a merge of the base branch: a new evaluation file, the config).
        """
        stray = [c.path for c in tree.staged_changes(parent)
                 if not matches_any(c.path, self.loop.editable) or matches_any(c.path, self.loop.all_protected)]
        if stray:
            tree.restore_paths(parent, stray)
        return tree.write_tree()

    def _base_moved(self) -> dict[str, object]:
        """For the run_start note (the PR body reads it): how far the base branch is ahead, when it is."""
        record, _ = self._ready()
        return {"base_behind": self.base_behind, "base_branch": record.meta.base_branch} if self.base_behind else {}

    def _instructions(self) -> str:
        _, tree = self._ready()
        try:  # on the research branch, which agents edit: never through a link, never unbounded
            return safefile.text_untrusted(tree.root, self.loop.instructions, INSTRUCTIONS_BYTES)
        except safefile.MissingFileError:
            self.warn(f"instructions file {self.loop.instructions} not found on the research branch")
        except safefile.UntrustedFileError as exc:
            self.warn(f"instructions file refused: {exc.message}; using the default instructions")
        return f"Improve the metric `{self.loop.metric.name}`."

    def _append(self, attempt: Attempt, patch: str) -> None:
        """Record an attempt and, unless this is a dry run, push branch and record together."""
        record, _ = self._ready()
        with self._signals.hold():
            self.store.append_attempt(attempt, patch)
            record.attempts.append(attempt)
            if self.remote is not None and self.remote.push():
                self._branch_moved()
            self._inflight.unlink(missing_ok=True)
        self._emit("on_attempt", attempt)

    def _protected_drift(self, base_sha: str, head: str) -> list[str]:
        """Protected paths the branch changed outside the loop (the evaluation still uses the base's)."""
        return [p for p in self.repo.changed_between(base_sha, head) if matches_any(p, self.loop.all_protected)]

    def _branch_moved(self) -> None:
        """The push took in commits from elsewhere: check the new head out; the run re-measures it."""
        record, tree = self._ready()
        self._branch_head = None
        head = self._head()
        tree.reset_hard(head)
        self._drifted = self._protected_drift(record.meta.base_sha, head)
        self.warn(f"{self.loop.branch} moved on {self.options.remote} (someone pushed to it); "
                  f"merged with this run's results at {head[:8]}, which is measured next")

    def _note(self, kind: str, **data: object) -> None:
        record, _ = self._ready()
        note = Note(kind=kind, at=now(), data=dict(data))  # type: ignore[arg-type]
        self.store.append_note(note, len(record.notes))
        record.notes.append(note)

    def _finish(self, reason: str, **data: object) -> None:
        self._note("run_end", reason=reason, run_id=self.run_id, **data)
        if self.remote is not None:
            self.remote.push()
        self._emit("on_end", reason)

    @contextmanager
    def _tracking_children(self) -> Iterator[None]:
        """Note every child's process group in the in-flight marker while the run lasts."""
        def track(pgid: int) -> None:
            if self._inflight.exists():
                info = json.loads(self._inflight.read_text())
                info["groups"] = [*info.get("groups", []), [pgid, process.identity(pgid)]]
                self._inflight.write_text(json.dumps(info))

        process.spawn_hooks.append(track)
        try:
            yield
        finally:
            process.spawn_hooks.remove(track)

    def _mark_inflight(self, number: int, description: str) -> None:
        self._inflight.write_text(json.dumps({
            "experiment": number, "started_at": now(), "run_id": self.run_id,
            "description": description, "pid": os.getpid(),
        }))

    def _move_branch(self, new: str, old: str) -> None:
        """Move the research branch from old to new (compare-and-swap) and remember it."""
        self.repo.move_ref(names.branch_ref(self.loop.name), new, old)
        self._branch_head = new

    def _head(self) -> str:
        if self._branch_head is None:
            self._branch_head = self.repo.rev(names.branch_ref(self.loop.name))
        assert self._branch_head is not None
        return self._branch_head

    def _ready(self) -> tuple[Record, Git]:
        assert self.record is not None and self.tree is not None, "call run() first"
        return self.record, self.tree

    def warn(self, text: str) -> None:
        """Say something the user should know; listeners print it."""
        self.warnings.append(text)
        for listener in self.listeners:
            on_warning = getattr(listener, "on_warning", None)
            if on_warning is not None:
                on_warning(self, text)

    def _seed(self, seed: int, result: SeedResult | None) -> None:
        """Tell listeners that have `on_seed(seed)` / `on_seed_done(seed, error)` (the terminal's printer)."""
        for listener in self.listeners:
            handler = getattr(listener, "on_seed" if result is None else "on_seed_done", None)
            if handler is not None:
                handler(seed) if result is None else handler(seed, result.error)

    def _phase(self, experiment: int, phase: str) -> None:
        self._emit("on_phase", experiment, phase)

    def _emit(self, method: str, *args: object) -> None:
        for listener in self.listeners:
            handler = getattr(listener, method, None)
            if handler is not None:
                handler(self, *args)


class _Signals:
    """Turn SIGINT and SIGTERM into Interrupted, except inside `hold()`, where they wait.

    A keep is a commit, a ref move, a record entry and a push; a signal halfway through would leave
    the branch and the record disagreeing, so those steps finish first and the signal lands after.
    """

    def __init__(self) -> None:
        self._held = 0
        self._pending: int | None = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._held:
            self._pending = signum
            return
        raise Interrupted(f"stopped by {signal.Signals(signum).name}")

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Install the handlers for the duration (main thread only; elsewhere a no-op)."""
        try:
            previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: signals cannot be handled here
            yield
            return
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Defer signals until the block is done."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held and self._pending is not None:
                signum, self._pending = self._pending, None
                raise Interrupted(f"stopped by {signal.Signals(signum).name}")
