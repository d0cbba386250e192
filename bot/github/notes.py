"""Steer a loop from outside a run: pause, resume and redirect notes, appended to the record and pushed."""

from __future__ import annotations

from typing import Any, Literal

from .. import names
from ..errors import ArlError
from ..git import Git
from ..record import Note, Record
from ..sanitize import clean
from ..store import RecordStore
from ..sync import Remote


def load(repo: Git, loop: str, remote: str | None = "origin") -> Record | None:
    """The loop's record, fetched from remote first (None: the loop has never run)."""
    if remote is not None:
        Remote(repo, remote, loop).pull()
    return RecordStore(repo, loop).load()


def add(repo: Git, loop: str, kind: Literal["pause", "resume", "redirect"], data: dict[str, Any],
        remote: str | None = "origin") -> Record:
    """Append a note to the loop's record and push it; returns the record with the note."""
    sync = Remote(repo, remote, loop) if remote is not None else None
    if sync is not None:
        sync.pull()
    store = RecordStore(repo, loop)
    record = store.load()
    if record is None:
        raise ArlError(f"loop {loop!r} has not run yet, so there is nothing to {kind}",
                       hint="start it first: `/autoresearch continue` or the workflow's Run button")
    note = Note(kind=kind, at=names.now(), data=data)
    store.append_note(note, len(record.notes))
    record.notes.append(note)
    if sync is not None:
        sync.push()
    return record


def redirect_text(text: str) -> str:
    """A person's steering text as the agent may see it: no HTML comments, escapes or invisible characters."""
    return clean(text)
