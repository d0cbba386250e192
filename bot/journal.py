"""The loop's journal: the record (appended in number order), the remote, in-flight markers and recovery.

One lock orders every write: attempts get their numbers when they are recorded, so numbers stay unique
and contiguous however many workers finish at once, and the record's order is the branch's order.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import names, process
from .branch import ResearchBranch
from .git import Git
from .record import Attempt, Note, Record
from .runners import BaselineTaken, StaleKeep
from .store import RecordStore
from .sync import Remote

now = names.now

@dataclass
class InFlight:
    """One experiment a worker is running: what its marker on disk says, and the groups to end."""

    worker: int
    number: int  # provisional: the number it gets if nothing else is recorded first
    started_at: str
    description: str = ""
    device: str = ""
    phase: str = ""
    groups: list[list[Any]] = field(default_factory=list)  # [pgid, identity] of every child it started


class Journal:
    """Record, remote and markers of one loop; thread-safe, every write under one lock."""

    def __init__(self, repo: Git, loop: str, state_dir: Path, remote: Remote | None, run_id: str,
                 hold: Callable[[], AbstractContextManager[None]]) -> None:
        self.repo = repo
        self.loop = loop
        self.store = RecordStore(repo, loop)
        self.remote = remote
        self.run_id = run_id
        self.state_dir = state_dir
        self.lock = threading.RLock()  # the record in memory and the markers
        # The refs (record, branch) and what writes them: taken before `lock`, never after it (see writing).
        self.refs = threading.RLock()
        self.record: Record | None = None
        self.in_flight: dict[int, InFlight] = {}  # by worker
        self.parallel = False  # markers (and so recovered attempts) name their worker and device
        self._hold = hold  # signals wait while the commit, the record and the push agree
        self._local = threading.local()  # which worker this thread runs (children's groups go to its marker)
        # Pushes run behind: an attempt is in the local record (the write-ahead log) before anything is
        # pushed, and a discard's push goes on while the next experiment runs. A keep is pushed at once.
        self._waiting = 0  # pushes asked for and not yet made
        self._pushing = threading.Condition()
        self._pusher: threading.Thread | None = None
        self._failed: BaseException | None = None  # what a push behind raised: raised at the next append
        self.moved_behind = threading.Event()  # a push behind took in commits: the run looks at its head

    # -- markers ------------------------------------------------------------------------------------
    def marker(self, worker: int) -> Path:
        """The in-flight marker of a worker (worker 0's is where a single-worker loop always had it)."""
        suffix = "" if worker == 0 else f".{worker}"
        return self.state_dir / f"{self.loop}.inflight{suffix}.json"

    def markers(self) -> list[Path]:
        """Every in-flight marker of this loop on disk."""
        return sorted(self.state_dir.glob(f"{self.loop}.inflight*.json"))

    def begin(self, worker: int, description: str = "", started_at: str = "") -> InFlight:
        """Note on disk that worker runs an experiment (found after a SIGKILL); its provisional number."""
        with self.lock:
            record = self.ready()
            taken = [f.number for f in self.in_flight.values()]
            number = max([record.next_experiment, *(n + 1 for n in taken)])
            flight = InFlight(worker, number, started_at or now(), description)
            self.in_flight[worker] = flight
            self._write_marker(flight)
        self._local.worker = worker
        return flight

    def update(self, worker: int, **changes: Any) -> None:
        """Change what a worker's marker says (its device, its phase)."""
        with self.lock:
            flight = self.in_flight.get(worker)
            if flight is None:
                return
            for key, value in changes.items():
                setattr(flight, key, value)
            self._write_marker(flight)

    def _write_marker(self, flight: InFlight) -> None:
        self.marker(flight.worker).write_text(json.dumps({
            "experiment": flight.number, "started_at": flight.started_at, "run_id": self.run_id,
            "description": flight.description, "pid": os.getpid(), "worker": flight.worker,
            "device": flight.device, "groups": flight.groups, "parallel": self.parallel,
        }))

    def end(self, worker: int) -> None:
        """The worker's experiment is recorded (or was never started): forget its marker."""
        with self.lock:
            self.in_flight.pop(worker, None)
            self.marker(worker).unlink(missing_ok=True)

    @contextmanager
    def tracking_children(self) -> Iterator[None]:
        """Note every child's process group in its worker's marker while the run lasts."""
        def track(pgid: int) -> None:
            worker = getattr(self._local, "worker", None)
            with self.lock:
                flight = self.in_flight.get(worker) if worker is not None else None
                if flight is None:
                    return
                flight.groups.append([pgid, process.identity(pgid)])
                self._write_marker(flight)

        process.spawn_hooks.append(track)
        try:
            yield
        finally:
            process.spawn_hooks.remove(track)

    def end_children(self) -> None:
        """End every child group of the experiments in flight (a signal stops all workers)."""
        with self.lock:
            groups = [g for f in self.in_flight.values() for g in f.groups]
        for pgid, proof in groups:
            if process.still_ours(int(pgid), str(proof)):
                process.kill_group(int(pgid))

    # -- the record ---------------------------------------------------------------------------------
    def ready(self) -> Record:
        """The record (loaded by the session's prepare)."""
        assert self.record is not None, "call run() first"
        return self.record

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the refs and the record: every writer takes them in this order, so none waits on another."""
        with self.refs, self.lock:
            yield

    def append(self, attempt: Attempt, patch: str, worker: int | None = None,
               renumber: bool = True, since: str | None = None) -> tuple[Attempt, bool]:
        """Record an attempt (renumbered to the next free number) and push; whether the push took in commits.

        With worker, its marker goes in the same held step: a SIGKILL after this leaves no marker for a
        recorded attempt, one before it leaves the marker and no attempt. A keep (or a baseline, or
        anything that moved the branch) is pushed before this returns; anything else is pushed behind.
        When another runner's keep won the push (StaleKeep), our commit comes off the branch and the
        record goes back to `since` (default: before this attempt), neither ever pushed. When another
        runner's baseline of the same commit won it (BaselineTaken), ours is not in the record: theirs is.
        """
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed
        behind = attempt.sha is None
        taken: Attempt | None = None
        with self.writing(), self._hold():
            record = self.ready()
            if renumber and attempt.experiment != record.next_experiment:
                attempt = dataclasses.replace(attempt, experiment=record.next_experiment)
            before = since or self.store.head()
            self.store.append_attempt(attempt, patch)
            record.attempts.append(attempt)
            moved = False
            if self.remote is not None and not behind:
                try:
                    moved = self.remote.push()
                except StaleKeep as lost:
                    if attempt.sha is None:
                        raise
                    # A push refused twice may have given our keep a new number (and so a new commit) first.
                    self._withdraw(self.remote.rewritten.get(attempt.sha, attempt.sha), before, lost.head)
                    raise
                moved = moved or bool(self.remote.rewritten)  # our unpushed keeps got new numbers
                ours = attempt
                attempt = self._level(attempt)
                if ours.experiment in self.remote.dropped:
                    taken = attempt
                    attempt = ours
            if worker is not None:
                self.end(worker)
        if taken is not None:  # another runner's baseline of the same commit reached the remote first
            raise BaselineTaken(taken, attempt, moved)
        if self.remote is not None and behind:
            self._push_behind()
        return attempt, moved

    def _push_behind(self) -> None:
        with self._pushing:
            self._waiting += 1
            if self._pusher is None:
                self._pusher = threading.Thread(target=self._push_forever, name="arl-push", daemon=True)
                self._pusher.start()
            self._pushing.notify_all()

    def _push_forever(self) -> None:
        """Make the pushes asked for, one each, in order (a push takes everything recorded so far)."""
        assert self.remote is not None
        while True:
            with self._pushing:
                if self._waiting == 0:  # nothing left: end; the next push behind starts a new thread
                    self._pusher = None
                    return
            try:
                with self.refs:  # not the record's lock: the next experiment plans while this pushes
                    moved = self.remote.push()
                    if self.remote.renumbered or self.remote.rewritten or self.remote.taken_in or self.remote.dropped:
                        with self.lock:
                            self.reload()
                if moved or self.remote.rewritten:
                    self.moved_behind.set()
            except BaseException as exc:  # raised in the run's thread at its next append or flush
                self._failed = exc
            with self._pushing:
                self._waiting -= 1
                self._pushing.notify_all()

    def flush(self) -> None:
        """Wait until every push asked for is made; raise what one of them raised."""
        with self._pushing:
            self._pushing.wait_for(lambda: self._waiting == 0)
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed

    def _level(self, attempt: Attempt) -> Attempt:
        """After a push that took in other runners' work: the record as it is now, and our attempt in it."""
        assert self.remote is not None
        if not (self.remote.renumbered or self.remote.rewritten or self.remote.taken_in or self.remote.dropped):
            return attempt
        self.reload()
        dropped = self.remote.dropped.get(attempt.experiment)  # a baseline of ours theirs already held: theirs
        number = dropped.theirs if dropped else self.remote.renumbered.get(attempt.experiment, attempt.experiment)
        return self.ready().attempt(number) or attempt

    def reload(self) -> None:
        """Read the record again (its ref moved: other runners' attempts, ours renumbered)."""
        record = self.ready()
        self.store.reset_index()
        fresh = self.store.load()
        assert fresh is not None
        # New lists, not edits in place: Record.fold caches by the list it folded.
        record.meta, record.attempts, record.notes = fresh.meta, fresh.attempts, fresh.notes

    def _withdraw(self, sha: str, before: str | None, head: str) -> None:
        """Our keep lost the race to another runner's: out of the record and off the branch, theirs taken in.

        Neither was pushed (the push is atomic), so both refs go back to what the remote can take: the
        record to before the keep, the branch to the other runner's head. The caller measures it again.
        """
        assert self.remote is not None and before is not None
        self.repo.move_ref(self.store.ref, before, self.store.head())
        self.repo.move_ref(names.branch_ref(self.loop), head, sha)
        self.remote.push()  # takes their record in (and pushes anything of ours still unpushed)
        self.reload()

    def note(self, kind: str, **data: object) -> None:
        """Add a note (run start and end, ...) to the record."""
        with self.writing():
            record = self.ready()
            note = Note(kind=kind, at=now(), data=dict(data))  # type: ignore[arg-type]
            self.store.append_note(note, len(record.notes))
            record.notes.append(note)

    def push(self) -> None:
        """Push branch and record (at the end of a run)."""
        if self.remote is not None:
            self.flush()
            with self.writing():
                try:
                    self.remote.push()
                except StaleKeep:  # a run ending on an error: its unpushed keep lost to another runner's
                    self.remote.pull()  # ours is recorded as interrupted, theirs is the branch
                    self.remote.push()
                if self.remote.renumbered or self.remote.taken_in:
                    self.reload()

    # -- recovery -----------------------------------------------------------------------------------
    def recover(self, branch: ResearchBranch) -> list[Attempt]:
        """Bring the record level with the branch and the markers after a run that died between them."""
        record = self.ready()
        found: list[Attempt] = []
        known = {a.experiment for a in record.attempts}
        for sha, subject, trailers in self.repo.commit_trailers(branch.loop.branch, record.meta.base_sha):
            number = int(trailers.get("Experiment", "-1"))
            if number < 0 or number in known:
                continue
            metric = float(trailers["Metric"]) if "Metric" in trailers else None
            best = record.best.metric if record.best else None
            found.append(self.append(Attempt(
                experiment=number, status="keep", metric=metric, description=subject,
                parent=self.repo.rev(f"{sha}^") or "", sha=sha, best_before=best,
                reason="recovered from the branch: the run that made it died before recording it",
                started_at=now(), run_id=self.run_id,
            ), self.repo.run("show", "--format=", "--binary", sha, strip=False), renumber=False)[0])
        recorded = {(a.run_id, a.started_at) for a in record.attempts}
        if self.remote is not None:  # a baseline the pull dropped for another runner's was recorded all the same
            recorded |= {(d.ours.run_id, d.ours.started_at) for d in self.remote.dropped.values()}
        for path in self.markers():
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                info = {}
            if not isinstance(info, dict):
                info = {}
            for entry in info.get("groups", []):
                # Children of a run killed by SIGKILL: end them before they touch the tree again, but only
                # groups that are provably still ours (a bare id from an older marker proves nothing).
                if isinstance(entry, list) and len(entry) == 2 and process.still_ours(int(entry[0]), str(entry[1])):
                    process.kill_group(int(entry[0]))
            number = int(info.get("experiment", -1))
            ran = (str(info.get("run_id", "")), str(info.get("started_at", "")))
            # Recorded already when the run died between the record and the marker's removal: the same
            # start (run and time) is in the record, or (a marker from before workers) its number is taken.
            done = ran in recorded or ("worker" not in info and number < record.next_experiment)
            if number >= 0 and not done:
                where = {"worker": info.get("worker", 0), **({"device": info["device"]} if info.get("device") else {})}
                found.append(self.append(Attempt(
                    experiment=number, status="interrupted", metric=None,
                    description=str(info.get("description", "")), parent=branch.head(),
                    best_before=record.best.metric if record.best else None,
                    reason="the bot was killed during this experiment (found on the next start)",
                    started_at=ran[1], run_id=ran[0],
                    extra=where if info.get("parallel") else {},
                ), "")[0])
            path.unlink(missing_ok=True)
        return found
