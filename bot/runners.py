"""Several runners on one loop: what one clone pushed meanwhile is taken in, and ours goes on top, renumbered.

The remote is the only shared state: each runner appends to its own record and pushes with a
compare-and-swap (an atomic, never forced push). A rejected push fetches and re-decides here: this
clone's unpushed attempts and notes are renumbered after the others' and written on top of their record;
its unpushed keeps get the new numbers in their trailers. A keep of ours made on a head another runner
has moved since cannot simply go on top: it was measured against a stale best (StaleKeep), and the
loop measures it again on the new head, as it does for a stale keep between its own workers. A baseline of
ours that another runner's record already holds (two runners started a new loop, or re-measured a moved
branch, at the same moment) is not recorded twice: theirs stands, ours is dropped (BaselineTaken).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from dataclasses import dataclass, field

from .errors import ArlError, GitError
from .git import TRAILER_PREFIX, Git, identity_env
from .record import Attempt

_ITEM = re.compile(r"^(attempts|diffs|notes)/\d+/(\d+)\.(json|patch)$")


class StaleKeep(ArlError):
    """Another runner kept a change first: this clone's unpushed keep was measured against a stale best."""

    def __init__(self, branch: str, head: str) -> None:
        super().__init__(f"another runner kept a change on {branch} ({head[:8]}) before this run's keep was "
                         "pushed", hint="the loop measures this run's change again on top of it")
        self.head = head


class BaselineTaken(ArlError):
    """Another runner recorded a baseline of the same commit first: ours was dropped, theirs stands."""

    def __init__(self, theirs: Attempt, ours: Attempt, moved: bool) -> None:
        super().__init__(f"another runner recorded the baseline of {(theirs.sha or '')[:8]} first (experiment "
                         f"{theirs.experiment}); this run's own measurement was not recorded a second time",
                         hint="nothing to do: experiments go on from their baseline")
        self.theirs = theirs
        self.ours = ours
        self.moved = moved  # the push took in commits: the run checks the new head out


@dataclass(frozen=True)
class Dropped:
    """A baseline of ours whose commit another runner's record already measured: not recorded a second time."""

    ours: Attempt
    theirs: int  # the number of their baseline of that commit


@dataclass
class Rebased:
    """Our record entries put on top of another runner's."""

    commit: str  # the new record commit (its parent: the remote's record)
    numbers: dict[int, int] = field(default_factory=dict)  # our attempts: old number -> new
    shas: dict[str, str] = field(default_factory=dict)  # our unpushed keeps: old commit -> re-trailered one
    taken_in: int = 0  # attempts the others added
    dropped: dict[int, Dropped] = field(default_factory=dict)  # by our number: baselines theirs already hold


def item_path(folder: str, number: int, suffix: str) -> str:
    """Where the record keeps item `number` (see store.py's layout)."""
    return f"{folder}/{number // 1000:03d}/{number:06d}{suffix}"


def _numbered(paths: list[str], folder: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for path in paths:
        match = _ITEM.match(path)
        if match and match.group(1) == folder:
            found[int(match.group(2))] = path
    return found


def bot_commits_only(repo: Git, ours: str, theirs: str) -> bool:
    """Whether every commit theirs has and ours lacks is an experiment's (it carries the bot's trailers)."""
    count = int(repo.run("rev-list", "--count", f"{ours}..{theirs}"))
    return count > 0 and len(repo.commit_trailers(theirs, ours)) == count


def retrailer(repo: Git, branch_ref: str, pushed: str, numbers: dict[int, int]) -> dict[str, str]:
    """Give our unpushed commits on the branch (after pushed) their new experiment numbers; old -> new sha.

    They were never pushed, so they may be rewritten: the same trees, the same order, new trailers.
    """
    head = repo.rev(branch_ref)
    if head is None or not numbers:
        return {}
    chain = repo.run("rev-list", "--reverse", f"{pushed}..{head}").split()
    key = f"{TRAILER_PREFIX}Experiment"
    if not any(_trailer(repo, sha, key) in {str(n) for n in numbers} for sha in chain):
        return {}
    shas: dict[str, str] = {}
    for sha in chain:
        parents = [shas.get(p, p) for p in repo.run("rev-list", "--parents", "-n", "1", sha).split()[1:]]
        message = repo.run("log", "-1", "--format=%B", sha, strip=False)
        old = _trailer(repo, sha, key)
        if old.isdigit() and int(old) in numbers:
            message = re.sub(rf"^{re.escape(key)}: {old}$", f"{key}: {numbers[int(old)]}", message, flags=re.M)
        tree = repo.run("rev-parse", f"{sha}^{{tree}}")
        shas[sha] = repo.objects.store_commit(tree, parents, message.rstrip("\n") + "\n")
    repo.move_ref(branch_ref, shas[chain[-1]], head)
    return shas


def _trailer(repo: Git, sha: str, key: str) -> str:
    return repo.run("log", "-1", f"--format=%(trailers:key={key},valueonly,unfold)", sha).strip()


def rebase_record(repo: Git, local: str, remote: str, *, branch_ref: str, pushed_branch: str | None,
                  unpublished: frozenset[str] = frozenset(), lost_start: str | None = None) -> Rebased:
    """Our record commits since the common one, as one commit on top of remote, renumbered after theirs.

    Attempts and notes take the next free numbers there, in their order here; a keep's commit (unpushed
    on the branch) gets the new number in its trailer. meta.json stays theirs unless only we changed it.
    Our keeps whose commits are in `unpublished` lost to another runner's and were never measured on top
    of it (the run stopped first): they are recorded as interrupted, their commit named in `extra`.
    A baseline of ours whose commit one of their new baselines measured is dropped (`dropped`), with its
    diff: two runners that started a new loop together would otherwise record two baselines of one tree.
    With lost_start (their record of the same new loop won, and our branch left that commit for theirs),
    our baselines of that commit are dropped for their first baseline, whatever commit it measured.
    """
    try:
        base: str | None = repo.run("merge-base", local, remote)
    except GitError:
        base = None  # two runners started the loop at once: no common record commit
    ours = (repo.run("diff", "--name-only", "--no-renames", "-z", base, local, strip=False).split("\0") if base
            else [p for p, _ in repo.tree_entries(local)])
    ours = [p for p in ours if p]
    theirs_entries = dict(repo.tree_entries(remote))
    theirs_added = (repo.run("diff", "--name-only", "--no-renames", "-z", base, remote, strip=False).split("\0")
                    if base else list(theirs_entries))
    local_entries = dict(repo.tree_entries(local))
    their_attempts = _numbered(list(theirs_entries), "attempts")
    our_attempts = _numbered(ours, "attempts")
    their_new = [theirs_entries[p] for p in _numbered(theirs_added, "attempts").values()]
    their_parsed = [Attempt.from_dict(json.loads(b)) for b in repo.objects.read_blobs(their_new)]
    their_keeps = {a.sha for a in their_parsed if a.status == "keep" and a.sha}
    their_baselines = {a.sha: a.experiment for a in their_parsed if a.status == "baseline" and a.sha}
    our_blobs = repo.objects.read_blobs([local_entries[p] for p in our_attempts.values()])
    ours_parsed = {old: Attempt.from_dict(json.loads(blob)) for old, blob in zip(our_attempts, our_blobs, strict=True)}
    if any(a.status == "keep" and a.sha in their_keeps and a.sha not in unpublished for a in ours_parsed.values()):
        # The other runner made the very same commit first (same change, parent, message and second): ours
        # was still measured against the best before it, so it is measured again like any stale keep.
        raise StaleKeep(branch_ref, pushed_branch or remote)
    dropped = {old: Dropped(a, their_baselines[a.sha]) for old, a in ours_parsed.items()
               if a.status == "baseline" and a.sha in their_baselines}
    first = min((a.experiment for a in their_parsed if a.status == "baseline"), default=None)
    if lost_start is not None and first is not None:
        dropped.update({old: Dropped(a, first) for old, a in ours_parsed.items()
                        if a.status == "baseline" and a.sha == lost_start and old not in dropped})
    our_diffs = _numbered(ours, "diffs")
    next_free = max(their_attempts, default=-1) + 1
    numbers: dict[int, int] = {}
    for old in sorted(our_attempts):
        if old in dropped:
            continue
        numbers[old] = next_free
        next_free += 1
    changed = {old: new for old, new in numbers.items() if old != new}
    shas = retrailer(repo, branch_ref, pushed_branch, changed) if pushed_branch else {}
    files: dict[str, str] = {}  # path -> blob
    for old, attempt in ours_parsed.items():
        if old in dropped:
            continue
        attempt = dataclasses.replace(attempt, experiment=numbers[old], parent=shas.get(attempt.parent, attempt.parent),
                                      sha=shas.get(attempt.sha, attempt.sha) if attempt.sha else attempt.sha)
        if attempt.sha in unpublished:
            attempt = dataclasses.replace(
                attempt, status="interrupted", sha=None, extra={**attempt.extra, "unpublished": attempt.sha},
                reason=f"{attempt.reason}; but another runner's keep reached the remote first, and this run "
                       "stopped before measuring the change again on top of it")
        files[item_path("attempts", numbers[old], ".json")] = repo.objects.store_blob(attempt.to_json().encode())
    for old, path in our_diffs.items():
        if old in dropped:
            continue
        files[item_path("diffs", numbers.get(old, old), ".patch")] = local_entries[path]
    taken_notes = set(_numbered(list(theirs_entries), "notes"))
    note = max(taken_notes, default=-1) + 1
    for _, path in sorted(_numbered(ours, "notes").items()):
        files[item_path("notes", note, ".json")] = local_entries[path]
        note += 1
    if "meta.json" in ours and base is not None and "meta.json" not in theirs_added:
        files["meta.json"] = local_entries["meta.json"]  # our rebase moved the base; theirs did not
    with tempfile.TemporaryDirectory(prefix="arl-record-") as scratch:
        env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}  # Git.run adds it to its own environment
        repo.run("read-tree", remote, env=env)
        cacheinfo: list[str] = []
        for path, blob in files.items():
            cacheinfo += ["--cacheinfo", f"100644,{blob},{path}"]
        if cacheinfo:
            repo.run("update-index", "--add", *cacheinfo, env=env)
        tree = repo.run("write-tree", env=env)
    commit = repo.run("commit-tree", tree, "-p", remote, "-m",
                      f"{len(numbers)} attempts and {note - max(taken_notes, default=-1) - 1} notes on top of "
                      "what other runners pushed meanwhile", env=identity_env())
    return Rebased(commit, changed, shas, len(_numbered(theirs_added, "attempts")), dropped)
