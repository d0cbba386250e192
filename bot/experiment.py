"""One experiment, from plan to recorded Attempt: planned (strategy.py) against the record, the agent's edit in
its worker's worktree, the checks (tree hazards, protected paths, validation), the evaluation in a device slot
(slots.py), the keep rule and guards, a keep measured against a stale best measured again on the new head, and
the record (journal.py through the session).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from . import decide, diffcheck, guards, prompt, safefile, treecheck, validate
from .agents import AgentResult, AgentTask
from .errors import Interrupted
from .evaluate import Measurement
from .git import Git
from .names import now
from .record import Attempt, Record, Status
from .runners import StaleKeep
from .scheduler import allowance
from .strategy import Plan

if TYPE_CHECKING:
    from .loop import Session

INSTRUCTIONS_BYTES = 1_000_000  # a bigger instructions file is refused (it goes into every prompt)
STALE_ROUNDS = 3  # re-measures of one stale keep before it is discarded (the branch kept moving under it)


@dataclass
class Work:
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


class _Finish(Protocol):
    """Records the attempt as it ends (status and reason, and what was measured) and resets the tree."""

    def __call__(self, status: Status, reason: str, measurement: Measurement | None = None,
                 sha: str | None = None, measured: dict[str, object] | None = None) -> Attempt: ...


def run(session: Session, worker: int, state: decide.RunState) -> Attempt:
    """One attempt on one worker, planned against the record as it is now, from the agent's edit to the record."""
    tree = session.worktree(worker)
    with session.journal.lock:  # planned against one consistent record; the agent runs outside the lock
        record = session.journal.ready()
        parent = session.branch.head()
        best = record.best
        assert best is not None and best.metric is not None
        plan = session.strategy.plan(record, parent)
        view = record if session.loop.workers == 1 else snapshot(record)
        started_at = now()
        number = session.journal.begin(worker, "", started_at).number
    work = Work(worker, number, parent, plan, best.metric, started_at, view)
    workdir = Path(tempfile.mkdtemp(prefix=f"arl-{session.loop.name}-{number}-"))
    try:
        return _attempt(session, work, tree, state, workdir)
    except Interrupted:
        tree.reset_hard(session.branch.head())
        session.reset_at.pop(worker, None)
        if worker not in session.journal.in_flight:  # the signal landed after the attempt was recorded
            raise
        # An agent that had finished paid for its change: keep the change and its description,
        # so `arl-bot results --diff` shows what was about to be measured.
        nothing: tuple[str, AgentResult, list[str], str] = (parent, AgentResult(""), [], "")
        start, result, files, patch = work.proposal or nothing
        after = "; the agent had finished: its change is recorded, not measured" if work.proposal else ""
        session.append(Attempt(
            experiment=number, status="interrupted", metric=None, description=result.description,
            parent=start, best_before=best.metric, reason=f"interrupted by SIGINT/SIGTERM{after}",
            mode=plan.mode, files=files, cost_usd=result.cost_usd, tokens_in=result.tokens_in,
            tokens_out=result.tokens_out, started_at=started_at, run_id=session.run_id,
            extra={**result.extra, **session.where(work)},
        ), patch, worker=worker)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _attempt(session: Session, work: Work, tree: Git, state: decide.RunState, workdir: Path) -> Attempt:
    """The agent edits plan.start's tree, then the checks; a keep becomes a commit on the head (linear history)."""
    number, parent, record, agent = work.number, work.parent, work.view, session.agent_for(work.worker)
    mode, start = work.plan.mode, work.plan.start
    if session.reset_at.get(work.worker) != parent:  # another worker kept something since this tree was reset
        tree.reset_hard(parent)
        session.reset_at[work.worker] = parent
    if start != parent:  # files and index only: HEAD stays at the head the keep is committed on
        tree.checkout_tree(start)
        session.reset_at.pop(work.worker, None)
    with session.journal.lock:  # the prompt reads the record (a snapshot when workers run side by side)
        text = prompt.render(session.loop, instructions(session, tree), record, mode, number, parent=start)
        redirects, history = prompt.notes(record), tuple(record.attempts)
    prompt_file = workdir / "prompt.md"
    prompt_file.write_text(text, encoding="utf-8")
    with session.journal.lock:
        others = len(session.journal.in_flight) - 1
    left = allowance(session.loop.budget, state, others)
    session.phase(number, "agent", work)
    t0 = time.monotonic()
    result = agent.propose(AgentTask(
        tree=tree.root, prompt=text, prompt_file=prompt_file, experiment=number, mode=mode,
        parent=start, timeout=session.loop.agent.timeout, cost_limit_usd=left,
        redirects=redirects, history=history,
    ))
    agent_s = time.monotonic() - t0
    session.checkpoint()
    session.reset_at.pop(work.worker, None)  # the agent changed the files: reset before the next experiment
    planted = tree.hazards(start)  # before git looks: it would read a nested repository's config
    if not planted:
        tree.stage_all()
    changes, patch = ([], "") if planted else tree.staged_diff(start)
    work.proposal = (start, result, [c.path for c in changes], patch)

    def finish(status: Status, reason: str, measurement: Measurement | None = None,
               sha: str | None = None, measured: dict[str, object] | None = None) -> Attempt:
        if sha is None:
            session.checkpoint()  # an interrupted phase is recorded as interrupted, not as its failure
        attempt = Attempt(
            experiment=number, status=status,
            metric=measurement.metric if measurement else None,
            description=result.description, parent=start, sha=sha, best_before=work.best,
            seeds=measurement.per_seed if measurement else {}, reason=reason, mode=mode,
            files=[c.path for c in changes], cost_usd=result.cost_usd, tokens_in=result.tokens_in,
            tokens_out=result.tokens_out, started_at=work.started_at, agent_s=round(agent_s, 3),
            eval_s=round(measurement.duration_s, 3) if measurement else 0.0,
            agent_log=result.log, eval_log=measurement.log if measurement else "",
            run_id=session.run_id, extra={**result.extra, **(measured or {}), **guards.recorded(measurement),
                                       **session.where(work)},
        )
        if sha is None:
            head = session.branch.head()
            tree.reset_hard(head)
            session.reset_at[work.worker] = head
        attempt = session.append(attempt, work.patch if work.patch is not None else patch, worker=work.worker)
        agent.observe(number, status, attempt.metric)
        return attempt

    if planted:
        return finish("invalid", treecheck.reason(planted))
    if not result.ok:
        return finish("crash", result.error)
    problem = diffcheck.violation(changes, session.loop) or validate.failure(tree.root, changes, session.loop)
    if problem is not None:
        return finish("invalid", problem)
    tree.clean_ignored()
    session.branch.restore_protected(tree, record.meta.base_sha)
    return _decide(session, work, tree, record, result, finish)


def _decide(session: Session, work: Work, tree: Git, record: Record, result: AgentResult,
            finish: _Finish) -> Attempt:
    """The keep rule and guards; a keep measured against a best that moved meanwhile is applied onto the new head
    and measured again (STALE_ROUNDS times at most), else discarded."""
    parent = work.parent
    status, reason, measurement, measured = judge(session, work, tree, record)
    stale: dict[str, object] = {}
    for _ in range(STALE_ROUNDS + 1):
        if status != "keep":
            break
        try:
            with session.signals.hold(), session.journal.writing():
                session.branch.forget()  # a push behind may have moved it (another runner's keep, a manual fix)
                head = session.branch.head()
                if head == parent:
                    # The index is what passed the checks; no phase can write it (it lives under .git,
                    # read-only in the sandbox), so its tree, taken now, is what was evaluated, less what
                    # keep_tree puts back.
                    tree_sha = session.branch.keep_tree(tree, parent)
                    final = session.journal.ready().next_experiment  # the number the journal gives it
                    sha = tree.commit_tree(tree_sha, parent, result.description, {
                        "Experiment": str(final), "Metric": repr(measurement.metric),
                        "Delta": repr(measurement.metric - work.best if measurement.metric is not None else 0.0),
                        "Status": "keep", "Seeds": ",".join(str(s) for s in session.loop.evaluate.seeds),
                        "Cost": f"{result.cost_usd:.4f}",
                    })
                    session.branch.move(sha, parent)
                    tree.reset_hard(sha)
                    session.reset_at[work.worker] = sha
                    return finish("keep", reason, measurement, sha, measured={**measured, **stale})
                newest = session.journal.ready().best
        except StaleKeep as lost:  # another runner's keep reached the remote first; the journal took it in
            session.branch.forget()
            head = lost.head
            with session.journal.lock:
                newest = session.journal.ready().best
        # Another worker or runner kept something since this one started: it was measured against a stale best.
        assert newest is not None and newest.metric is not None
        kept_meanwhile = f"experiment {newest.experiment} ({(newest.sha or head)[:8]})"
        candidate = session.branch.keep_tree(tree, parent)
        if session.branch.onto(tree, candidate, parent, head) is None:
            reason = (f"{reason}, but against a stale best: {kept_meanwhile} was kept meanwhile and this "
                      "change does not apply onto it (they change the same lines)")
            return finish("discard", reason, measurement, measured={**measured, **stale})
        stale = {"stale": {"first_metric": measurement.metric, "measured_against": work.best,
                           "onto": head, "onto_experiment": newest.experiment}}
        with session.journal.lock:
            record = session.journal.ready() if session.loop.workers == 1 else snapshot(session.journal.ready())
        work.view, work.parent, work.best = record, head, newest.metric
        work.patch = tree.staged_patch(head)
        parent = head
        session.branch.restore_protected(tree, record.meta.base_sha)
        status, reason, measurement, measured = judge(session, work, tree, record)
        reason = f"re-measured on top of {kept_meanwhile}: {reason}"
    if status == "keep":  # the branch moved under it every time
        status, reason = "discard", f"{reason}; but the branch kept moving ({STALE_ROUNDS} re-measures)"
    return finish(status, reason, measurement, measured={**measured, **stale})


def judge(session: Session, work: Work, tree: Git,
          record: Record) -> tuple[Status, str, Measurement, dict[str, object]]:
    """Evaluate the worktree in a device slot, then the keep rule and (for a would-be keep) the guards."""
    with session.device(work.worker, work) as (measurer, sandbox):
        session.phase(work.number, "evaluating", work)
        verdict = measurer.candidate(tree.root, record)
        measurement, reason = verdict.measurement, verdict.reason
        status: Status = "keep" if verdict.status == "keep" else "crash" if verdict.status == "crash" else "discard"
        measured = dict(verdict.extra)
        if status == "keep" and session.loop.guards.active:  # only a would-be keep pays for its checks
            session.phase(work.number, "guards", work)
            judged = guards.judge(session.loop, sandbox, tree.root, measurement, record.best)
            measured.update(judged.extra())
            if not judged.ok:
                status, reason = "discard", f"{reason}; but {judged.reason}"
    return status, reason, measurement, measured


def instructions(session: Session, tree: Git | None = None) -> str:
    """The loop's instructions for the agent, read from the research branch (agents edit it)."""
    tree = tree or session.ready()[1]
    try:  # on the research branch, which agents edit: never through a link, never unbounded
        return safefile.text_untrusted(tree.root, session.loop.instructions, INSTRUCTIONS_BYTES)
    except safefile.MissingFileError:
        session.warn(f"instructions file {session.loop.instructions} not found on the research branch")
    except safefile.UntrustedFileError as exc:
        session.warn(f"instructions file refused: {exc.message}; using the default instructions")
    return f"Improve the metric `{session.loop.metric.name}`."


def snapshot(record: Record) -> Record:
    """A copy of the record one experiment reads while other workers append to the original."""
    return Record(meta=record.meta, attempts=list(record.attempts), notes=list(record.notes))
