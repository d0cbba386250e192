"""The names modules share: loop names, branches and refs, the record's timestamps, variables no agent gets.

Each is defined here once, so no two modules can spell a ref or a time differently (pure, no imports of ours).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

LOOP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # it becomes a branch and a ref: lowercase, digits, '-'
BRANCH_PREFIX = "autoresearch/"  # every research branch, and the pull requests the bot opens from them
STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # how the record writes a time (always UTC)
RUN_ID = "%Y%m%dT%H%M%SZ"  # a run's id, when the caller gives none: UTC to the second, then RUN_ID_SUFFIX
# Random hex after the time: two runners started in the same second (on one machine or two, where process
# ids repeat across containers) still get ids of their own, and ids still sort by their start's second.
# os.urandom, not secrets: this module is imported by every command, and secrets costs ~4 ms to import.
RUN_ID_SUFFIX = 6  # random hex digits after a run id's time
# The refs only the bot moves (the research branches, the records, our copies of a remote's): git never
# needs to be asked what they point at when their loose file says it.
BOT_REFS = (f"refs/heads/{BRANCH_PREFIX}", "refs/autoresearch/", "refs/autoresearch-remote/")
# Variables no agent ever gets, whatever `pass_env` says: the GitHub token can push to the repository.
NEVER_PASSED = ("GITHUB_TOKEN", "GH_TOKEN")


def branch(loop: str) -> str:
    """The loop's research branch."""
    return f"{BRANCH_PREFIX}{loop}"


def branch_ref(loop: str) -> str:
    """The research branch's full ref."""
    return f"refs/heads/{branch(loop)}"


def record_ref(loop: str) -> str:
    """The ref that holds the loop's record."""
    return f"refs/autoresearch/{loop}/record"


def unmerged_ref(loop: str, sha: str) -> str:
    """Where a run's head is pushed when someone else's push to the branch conflicts with it."""
    return f"refs/autoresearch/{loop}/unmerged/{sha[:12]}"


def tracking_ref(remote: str, loop: str, what: str) -> str:
    """Our copy of a remote's branch ("branch") or record ("record").

    Not under refs/remotes/<remote>/autoresearch/<loop>: that is a file there (the branch), not a folder.
    """
    return f"refs/autoresearch-remote/{remote}/{loop}/{what}"


def now() -> str:
    """The current UTC time as the record writes it."""
    return datetime.now(UTC).strftime(STAMP)


def parse_stamp(stamp: str) -> datetime:
    """A time the record wrote, as an aware UTC datetime; raise ValueError for one it could not have."""
    return datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)


def run_id(at: datetime | None = None) -> str:
    """A new run's id, unique to this process: `20260102T030405Z-1a2b3c` (at: its start, default now)."""
    return f"{(at or datetime.now(UTC)).strftime(RUN_ID)}-{os.urandom(RUN_ID_SUFFIX // 2).hex()}"
