"""Dry runs record locally on the loop's branch and record; a real run pushes them only when told to."""

from __future__ import annotations

from . import names
from .errors import ArlError
from .git import Git
from .record import Attempt, Record
from .store import RecordStore
from .sync import Remote


def dry_run_ids(record: Record) -> set[str]:
    """The run ids of every dry run the record holds (from their run_start notes)."""
    return {str(note.data.get("run_id", "")) for note in record.notes
            if note.kind == "run_start" and note.data.get("dry_run")}


def unpushed(record: Record, remote: Record | None) -> list[Attempt]:
    """Attempts of dry runs that the remote's record does not hold yet: the next push takes them along."""
    ids = dry_run_ids(record)
    there = {a.experiment for a in remote.attempts} if remote is not None else set()
    return [a for a in record.attempts if a.run_id in ids and a.experiment not in there]


def check_before_push(repo: Git, loop: str, remote: str, *, allow: bool) -> str:
    """Before a real run: refuse to push dry-run experiments unless allowed; say what goes when it is.

    Refused before the run starts because a run pushes even as it stops (its end note): once it has
    begun, the dry-run experiments would go with it whatever it said.
    """
    record = RecordStore(repo, loop).load()
    if record is None or not dry_run_ids(record):
        return ""
    sync = Remote(repo, remote, loop)
    sync.pull()  # what the remote holds now; the run's own pull then finds nothing new
    theirs = RecordStore(repo, loop)
    theirs.ref = sync.tracking_record
    pending = unpushed(record, theirs.load())
    if not pending:
        return ""
    runs = sorted({a.run_id for a in pending})
    what = (f"{len(pending)} experiment{'s' if len(pending) != 1 else ''} from dry runs "
            f"(run id{'s' if len(runs) > 1 else ''} {', '.join(runs)})")
    if not allow:
        raise ArlError(
            f"{what} would be pushed to {remote} with this run: dry runs record on the same research branch "
            "and record as real ones",
            hint=f"pass --push-dry-runs to publish them with this run, or drop them first: `git update-ref -d "
                 f"{names.record_ref(loop)} && git branch -D {names.branch(loop)}` "
                 f"(the next run starts from what {remote} holds)")
    return f"pushing {what} to {remote} with this run (--push-dry-runs)"
