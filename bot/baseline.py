"""What a run starts from and what the bot itself changes: the record, branch and worktree prepared, the
baseline (a first one, and a re-measure when the branch moved outside the loop or new guards came in), and a
change made by the bot, not the agent (a revert, a rebase: `adopt`), measured and recorded whatever it scores.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import guards, noise, rebase
from .errors import ArlError, RecordError
from .git import Git
from .names import now
from .record import Attempt, Meta, Record, Status
from .runners import BaselineTaken, StaleKeep

if TYPE_CHECKING:
    from .loop import Session


def prepare(session: Session) -> Record:
    """Sync with the remote, find or create the branch, the worktree and the record."""
    if session.remote is not None:
        session.remote.pull()
        for number, dropped in session.remote.dropped.items():  # a run here stopped before pushing its baseline
            session.warn(f"the baseline this clone recorded as experiment {number} ({dropped.ours.metric}) never "
                         f"reached {session.remote.name}, and another runner's baseline (experiment {dropped.theirs}) "
                         "reached it first: theirs stands, this clone's is dropped")
    record = session.store.load()
    # The record lives as long as the run: keep its thousands of objects out of every GC pass.
    gc.freeze()
    branch_ref = session.branch.ref
    if record is None:
        base_branch = session.loop.base or session.repo.current_branch()
        if base_branch is None:
            raise ArlError("HEAD is detached: no base branch to start from",
                           hint="check out a branch, or set `base:` in the loop's config")
        base_sha = session.repo.rev(base_branch)
        if base_sha is None:
            raise ArlError(f"base branch {base_branch!r} has no commits",
                           hint="commit your project first")
        if session.repo.rev(branch_ref) is None:
            session.repo.move_ref(branch_ref, base_sha, None)
        record = session.store.create(Meta(
            loop=session.loop.name, base_branch=base_branch, base_sha=base_sha, created_at=now(),
            goal=session.loop.metric.goal, metric=session.loop.metric.name,
        ))
    elif session.repo.rev(branch_ref) is None:
        raise RecordError(
            f"the record exists but branch {session.loop.branch} does not", where=session.store.ref,
            hint=f"fetch the branch, or delete the record with `git update-ref -d {session.store.ref}`",
        )
    if session.repo.current_branch() == record.meta.base_branch and session.repo.dirty():
        session.warn("your checkout has uncommitted changes; they are not part of the base "
                     f"({record.meta.base_sha[:8]}) and the loop will not see them")
    if session.repo.current_branch() == session.loop.branch:
        session.warn(f"your checkout has {session.loop.branch} checked out: the loop moves that branch with each "
                     "keep, so your files will look changed; check out another branch while it runs")
    session.repo.exclude("/.arl-bot/")
    # Detached at the head (never the branch itself), repaired or made anew when the repository moved.
    session.tree = session.worktree(0)
    session.record = record
    for attempt in session.journal.recover(session.branch):
        session.told(attempt)
    head = session.branch.head()
    session.tree.reset_hard(head)
    session.reset_at[0] = head
    drifted = session.branch.measure_drift(record.meta.base_sha, head)
    if drifted:
        session.warn(f"the research branch changed protected paths ({', '.join(drifted[:5])}); every evaluation "
                     f"uses the base's version of them; {rebase_hint(session)} makes them the new base")
    session.base_behind = rebase.behind(session.repo, record.meta.base_branch, head, session.options.remote)
    return record


def rebase_hint(session: Session) -> str:
    """How to make the base branch's commits (and the protected paths' drift) the loop's new base."""
    return f"`arl-bot rebase --loop {session.loop.name}` (or `/autoresearch rebase` on the pull request)"


def warn_base_moved(session: Session, record: Record) -> None:
    """Say at the start of a run that the base branch has commits the research branch lacks."""
    behind = session.base_behind
    if behind:
        session.warn(f"{record.meta.base_branch} moved {behind} commit{'s' if behind > 1 else ''} "
                     f"ahead of the research branch, which still builds on {record.meta.base_sha[:8]}; "
                     f"{rebase_hint(session)} brings them in")


def needed(session: Session) -> bool:
    """First run, or the branch moved outside the loop (a manual fix, a merge), or new guards."""
    if session.journal.moved_behind.is_set():  # a push behind took in commits: look at the new head here
        session.journal.moved_behind.clear()
        session.branch_moved()
    with session.journal.lock:
        record = session.journal.ready()
        return record.best is None or record.best.sha != session.branch.head() or \
            guards.unverified(record.best, session.loop.guards)


def checked(session: Session) -> Attempt:
    """Measure what is there now, so every comparison is against a real number; stop if it fails."""
    baseline = measure(session)
    if baseline.status != "baseline" and baseline.extra.get("guard_failed"):
        what = "the base" if baseline.description == "baseline" else \
            f"{session.loop.branch} as it is now"
        raise ArlError(  # a guard the base breaks could never be satisfied by a keep
            f"{what} fails guard `{baseline.extra['guard_failed']}`: {baseline.reason}",
            hint="fix it on the branch, or change that guard under `guards:` in the config")
    if baseline.status != "baseline":
        raise ArlError(
            f"the baseline evaluation failed: {baseline.reason}",
            hint="run `arl-bot eval` to see the evaluation's output and fix it first",
        )
    return baseline


def measure(session: Session) -> Attempt:
    """Measure the branch as it is: experiment 0 (or the next number, after a failed baseline)."""
    record, tree = session.ready()
    head = session.branch.head()
    if session.reset_at.get(0) != head:
        tree.reset_hard(head)
        session.reset_at[0] = head
    started_at = now()
    number = session.journal.begin(0, "baseline", started_at).number
    session.branch.restore_protected(tree, record.meta.base_sha)  # a baseline too is judged by the base's code
    session.phase(number, "evaluating baseline")
    with session.device(0) as (measurer, sandbox):
        measurement, measured = measurer.baseline(tree.root, record.meta.base_sha)
        ok = measurement.metric is not None
        reason = measurement.error
        measured = {**measured, **guards.recorded(measurement)}
        if ok and session.loop.guards.active:  # the base must pass its own guards, or no keep ever could
            session.phase(number, "guards")
            judged = guards.judge(session.loop, sandbox, tree.root, measurement, None)
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
        started_at=started_at, eval_s=measurement.duration_s, eval_log=measurement.log, run_id=session.run_id,
        extra=measured,
    )
    tree.reset_hard(head)
    try:
        attempt = session.append(attempt, "", worker=0)
    except BaselineTaken as taken:  # two runners started the loop (or re-measured a moved branch) together
        return _taken(session, taken)
    settings = session.loop.evaluate
    advice = noise.baseline_advice(session.loop.keep.rule, len(settings.seeds) * settings.baseline_repeats,
                                   measured.get("noise", {}).get("sigma"), session.loop.metric.min_delta,
                                   session.loop.keep.k) if ok else None
    if advice:
        session.warn(advice)
    return attempt


def _taken(session: Session, taken: BaselineTaken) -> Attempt:
    """Another runner's baseline of the same commit reached the remote first: go on from theirs, say ours."""
    theirs, ours = taken.theirs, taken.ours
    session.warn(f"another runner recorded the baseline of {(theirs.sha or '')[:8]} first: experiment "
                 f"{theirs.experiment}, {session.loop.metric.name} = {theirs.metric}; this run measured "
                 f"{ours.metric}{'' if ours.sha == theirs.sha else ' on ' + (ours.sha or '')[:8]} and does not "
                 "record it a second time; experiments go on from theirs")
    if taken.moved:  # their keeps came with it: the run goes on from their head
        session.branch_moved()
    return theirs


def adopt(session: Session, make: Callable[[Git, str], str], *, mode: str, reason: str,
          trailers: dict[str, str] | None = None, extra: dict[str, object] | None = None,
          base: str | None = None) -> tuple[Record, Attempt]:
    """Measure and record a change made by the bot, not the agent (a revert, a rebase), kept whatever it scores.

    make(tree, head) stages the change in the research worktree and returns its description, or
    raises ArlError having changed nothing; then nothing is recorded either. With base (a rebase),
    the change brought that commit in: it becomes the loop's base before the measurement (its
    protected files are evaluated), the commit's second parent unless the head has it already, and
    the attempt is a re-measured baseline; a change that does not evaluate leaves the base as it was.
    The caller holds the loop's lock and its signals, and ends the run.
    """
    record = prepare(session)
    _, tree = session.ready()
    head = session.branch.head()
    number = record.next_experiment
    description = make(tree, head)
    tree_sha = tree.write_tree()
    old_meta = record.meta
    if base is not None:
        record.meta = dataclasses.replace(record.meta, base_sha=base)
        session.branch.measure_drift(base, tree_sha)
        session.base_behind = 0
    session.note("run_start", run_id=session.run_id, url=session.options.run_url, sandbox=session.sandbox.name,
                 dry_run=session.options.dry_run, mode=mode, **session.base_moved())
    session.tell(lambda x: x.on_start(session.view))
    best = record.best.metric if record.best else None
    started_at = now()
    session.journal.begin(0, description, started_at)
    session.phase(number, "evaluating")
    measured: dict[str, object] = {}
    with session.device(0) as (measurer, _):
        session.branch.restore_protected(tree, base or record.meta.base_sha)
        if base is None:
            m = measurer.measure(tree.root, list(session.loop.evaluate.seeds), record.meta.base_sha)
        else:  # a new base: measured like a first baseline (noise, holdout) with the new base's files
            m, measured = measurer.baseline(tree.root, base)
    status: Status = "keep" if base is None else "baseline"
    common = dict(experiment=number, metric=m.metric, description=description, parent=head,
                  best_before=best, seeds=m.per_seed, mode=mode, started_at=started_at,
                  eval_s=m.duration_s, eval_log=m.log, run_id=session.run_id,
                  extra={**measured, **guards.recorded(m), **(extra or {})})
    patch = tree.staged_patch(head)
    since = session.store.head()  # what the record goes back to when another runner's keep wins
    with session.signals.hold(), session.journal.writing():
        if m.metric is None:  # a change that does not evaluate is not put on the branch
            record.meta = old_meta
            tree.reset_hard(head)
            attempt = Attempt(status="crash", reason=f"{reason}; it did not evaluate: {m.error}",
                              **common)  # type: ignore[arg-type]
        else:
            merged = [base] if base is not None and not session.repo.is_ancestor(base, head) else []
            sha = tree.commit_tree(tree_sha, head, description, {
                "Experiment": str(number), "Metric": repr(m.metric),
                "Delta": repr(m.metric - best if best is not None else 0.0), "Status": status,
                **(trailers or {})}, merged=merged)
            if base is not None:
                session.store.write_meta(record.meta)  # first: a run that dies next re-measures, on the new base
            session.branch.move(sha, head)
            tree.reset_hard(sha)
            attempt = Attempt(status=status, sha=sha, reason=reason, **common)  # type: ignore[arg-type]
        try:
            attempt = session.append(attempt, patch, worker=0, since=since)
        except StaleKeep as lost:  # the journal took the other runner's work in; ours is undone
            session.branch.forget()
            session.journal.end(0)
            raise ArlError(
                f"another runner kept a change on {session.loop.branch} ({lost.head[:8]}) while this {mode} "
                "was being measured; nothing of it was recorded or pushed",
                hint=f"run the {mode} again: it starts from the new head") from None
    return record, attempt
