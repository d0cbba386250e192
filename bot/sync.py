"""Keep the research branch and the record level with the remote; every push is atomic, none forced."""

from __future__ import annotations

import json
import re
from typing import TypeVar

from . import names, runners
from .errors import ArlError, GitError, PushRejectedError, RecordError
from .git import Git

# What git and GitHub say when a push is refused for a reason a retry cannot fix (matched in git's stderr;
# git runs with LC_ALL=C). Only a non-fast-forward means someone else pushed first.
_TOO_LARGE = re.compile(r"File (.+?) is ([\d.]+ [KMG]B); this exceeds GitHub's file size limit of ([\d.]+ [KMG]B)")
_NO_PERMISSION = ("Permission to", "permission denied", "returned error: 403", "403 Forbidden",
                  "Authentication failed", "could not read Username", "Write access to repository not granted")
_PROTECTED = ("GH006", "protected branch hook declined")
K = TypeVar("K", int, str)  # what _chain maps: attempt numbers, commit shas
PUSH_TRIES = 8  # rejected pushes in a row before giving up; each takes in what the others pushed first
_NON_FAST_FORWARD = ("non-fast-forward", "fetch first", "Updates were rejected because", "stale info",
                     "atomic push failed",
                     # another push moved the ref while the remote took ours (two runners at once)
                     "cannot lock ref", "failed to update ref")


def refusal(remote: str, branch: str, stderr: str) -> ArlError | None:
    """The real cause of a refused push, as an error to raise, or None when it is a race a retry may win."""
    said = "; ".join(line.strip() for line in stderr.splitlines() if line.strip().startswith("remote:"))[:400]
    large = _TOO_LARGE.search(stderr)
    if large or "GH001" in stderr:
        what = (f"{large.group(1)} is {large.group(2)}, over GitHub's limit of {large.group(3)} a file" if large
                else "a file is over GitHub's size limit (GH001)")
        return ArlError(
            f"{remote} refused the push of the research branch and record: {what}",
            hint=f"a file that large can never be pushed to GitHub: a kept experiment on {branch} added it "
            f"(`git log --stat {branch}` finds which). Remove it from the branch, or keep such files out of "
            "the repository (.gitignore) or in Git LFS, then run again; the record itself stores only capped diffs")
    if any(word.lower() in stderr.lower() for word in _NO_PERMISSION):
        return ArlError(
            f"{remote} refused the push: no permission to write to it ({said or stderr.strip()[:200]})",
            hint="the token needs `contents: write` (the workflow's `permissions:`), or the user push access; "
            "nothing kept is lost (it is in this clone's branch and record)")
    if any(word in stderr for word in _PROTECTED):
        return ArlError(
            f"{remote} refused the push: a branch protection rule covers {branch} ({said})",
            hint="exempt `autoresearch/*` from the repository's branch protection (or rulesets), then run again")
    if "pre-receive hook declined" in stderr or ("remote:" in stderr and not any(
            word in stderr for word in _NON_FAST_FORWARD)):
        return ArlError(
            f"{remote} refused the push: its pre-receive hook declined it ({said or stderr.strip()[:200]})",
            hint="the remote's own checks refused it; its words above say why; nothing kept is lost")
    return None


class Remote:
    """The remote a loop pushes to (`origin` unless told otherwise)."""

    def __init__(self, repo: Git, name: str, loop: str) -> None:
        self.repo = repo
        self.name = name
        self.loop = loop
        self.branch_ref = names.branch_ref(loop)
        self.record_ref = names.record_ref(loop)
        self.tracking_branch = names.tracking_ref(name, loop, "branch")
        self.tracking_record = names.tracking_ref(name, loop, "record")
        # What the last pull or push did to this clone's refs, for the journal to bring its record level:
        self.renumbered: dict[int, int] = {}  # our unpushed attempts, old number -> new
        self.rewritten: dict[str, str] = {}  # our unpushed keeps, old commit -> the same with the new number
        self.taken_in = 0  # attempts other runners recorded, now in our record too
        self.dropped: dict[int, runners.Dropped] = {}  # our unpushed baselines theirs already held, by number

    def pull(self) -> None:
        """Fetch branch and record; fast-forward ours, or say why we cannot."""
        if not self.repo.has_remote(self.name):
            raise ArlError(
                f"there is no remote named {self.name!r} to push results to",
                hint="add one with `git remote add origin URL`, or run with --dry-run to keep it local",
            )
        self.repo.fetch(self.name, [f"+{self.branch_ref}:{self.tracking_branch}",
                                    f"+{self.record_ref}:{self.tracking_record}"])
        self.renumbered, self.rewritten, self.taken_in, self.dropped = {}, {}, 0, {}
        start = self._start_lost()
        ours, theirs = self.repo.rev(self.branch_ref), self.repo.rev(self.tracking_branch)
        lost: frozenset[str] = frozenset()
        if ours and theirs and not self.repo.is_ancestor(theirs, ours) and not self.repo.is_ancestor(ours, theirs) \
                and runners.bot_commits_only(self.repo, ours, theirs) \
                and runners.bot_commits_only(self.repo, theirs, ours):
            # A run here kept something and stopped before it could push, while another runner kept first:
            # theirs is the branch; ours is recorded as interrupted (it was never measured on top of theirs).
            lost = frozenset(self.repo.run("rev-list", f"{theirs}..{ours}").split())
            self.repo.move_ref(self.branch_ref, theirs, ours)
        self._take_in_record(lost, start)  # what a run here recorded and never pushed goes on top, renumbered
        self._fast_forward(self.branch_ref, self.tracking_branch, "research branch")

    def _fast_forward(self, ours: str, theirs: str, what: str) -> None:
        local, remote = self.repo.rev(ours), self.repo.rev(theirs)
        if remote is None or local == remote:
            return
        if local is None or self.repo.is_ancestor(local, remote):
            self.repo.move_ref(ours, remote, local)
        elif not self.repo.is_ancestor(remote, local):
            raise RecordError(
                f"the {what} here and on {self.name} have diverged", where=ours,
                hint=f"another clone ran this loop; compare `git log {ours}` with `git log {theirs}`",
            )

    def push(self) -> bool:
        """Push branch and record in one atomic push: both land or neither does.

        A rejected push fetches, takes in what was pushed meanwhile and retries: notes (a `stop` or
        `redirect` from a comment) and other runners' attempts go under ours, which are renumbered after
        them (`renumbered`); another runner's keeps fast-forward our branch; commits someone pushed to the
        research branch by hand (a manual fix) are merged with ours, keeping both. A keep of ours made on a
        head another runner has moved since raises StaleKeep: it must be measured again. Returns whether
        the branch took in commits from elsewhere.
        """
        self.renumbered, self.rewritten, self.taken_in, self.dropped = {}, {}, 0, {}
        moved = False
        last = ""
        for _ in range(PUSH_TRIES):
            refs = [f"{ref}:{ref}" for ref in (self.branch_ref, self.record_ref) if self.repo.rev(ref)]
            try:
                self.repo.push(self.name, refs)
                break
            except PushRejectedError as exc:
                hard = refusal(self.name, self.branch_ref, exc.stderr)
                if hard is not None:
                    raise hard from None
                last = exc.stderr
            self.repo.fetch(self.name, [f"+{self.branch_ref}:{self.tracking_branch}",
                                        f"+{self.record_ref}:{self.tracking_record}"])
            start = self._start_lost()
            moved = start is not None or self._take_in_branch() or moved
            self._take_in_record(lost_start=start)
        else:
            raced = any(word in last for word in _NON_FAST_FORWARD)
            raise ArlError(
                f"{self.name} refused the push of the research branch and record {PUSH_TRIES} times: {last}",
                hint=("others are pushing to the research branch faster than this run can take their work in; "
                      "run again to sync, nothing kept is lost (it is in this clone's branch and record)") if raced
                else "git's words above say why; nothing kept is lost (it is in this clone's branch and record)",
            )
        pushed = {tracking: self.repo.rev(ours) for ours, tracking in ((self.branch_ref, self.tracking_branch),
                                                                       (self.record_ref, self.tracking_record))}
        self.repo.set_refs({tracking: sha for tracking, sha in pushed.items() if sha})
        return moved

    def _take_in_branch(self) -> bool:
        """When the research branch moved there, fast-forward or merge ours onto it (never force)."""
        ours, theirs = self.repo.rev(self.branch_ref), self.repo.rev(self.tracking_branch)
        if ours is None or theirs is None or self.repo.is_ancestor(theirs, ours):
            return False
        if self.repo.is_ancestor(ours, theirs):
            self.repo.move_ref(self.branch_ref, theirs, ours)
            return True
        if runners.bot_commits_only(self.repo, ours, theirs):
            # Another runner's keeps, and ours on the old head: ours was measured against a stale best.
            raise runners.StaleKeep(self.branch_ref, theirs)
        tree = self.repo.merge_trees(ours, theirs)
        if tree is None:
            side = names.unmerged_ref(self.loop, ours)
            self.repo.push(self.name, [f"{ours}:{side}", f"{self.record_ref}:{self.record_ref}"])
            raise ArlError(
                f"someone pushed commits to {self.branch_ref} on {self.name} that conflict with this run's "
                f"kept experiments; nothing is lost: they are pushed to {side} and in the record",
                hint=f"merge {side} into the research branch by hand, push it, then run again",
            )
        merged = self.repo.objects.store_commit(tree, [ours, theirs], f"Merge {self.name}'s changes to the research "
                                        "branch with this run's kept experiments")
        self.repo.move_ref(self.branch_ref, merged, ours)
        return True

    def _start_lost(self) -> str | None:
        """When another runner created this loop's record too, and first: the commit our branch left for theirs.

        The two records then have no commit in common, and theirs is the loop. Ours has kept nothing while
        our branch is still at our own base (another commit than theirs when the base branch moved between
        the two starts): the branch goes to theirs, and our baseline of that base is dropped for theirs.
        """
        local, remote = self.repo.rev(self.record_ref), self.repo.rev(self.tracking_record)
        ours, theirs = self.repo.rev(self.branch_ref), self.repo.rev(self.tracking_branch)
        if local is None or remote is None or ours is None or theirs is None or ours == theirs:
            return None
        try:
            self.repo.run("merge-base", local, remote)
            return None  # one loop's record, pushed before: the usual take-in
        except GitError:
            pass
        if ours != json.loads(self.repo.run("show", f"{local}:meta.json")).get("base_sha"):
            return None  # something is on our branch besides our base: the usual take-in decides
        self.repo.move_ref(self.branch_ref, theirs, ours)
        return ours

    def _take_in_record(self, unpublished: frozenset[str] = frozenset(), lost_start: str | None = None) -> None:
        """Put our record's new commits on top of what others pushed: their notes and attempts, then ours."""
        local, remote = self.repo.rev(self.record_ref), self.repo.rev(self.tracking_record)
        if remote is None or local == remote or (local is not None and self.repo.is_ancestor(remote, local)):
            return
        if local is None or self.repo.is_ancestor(local, remote):  # nothing of ours unpushed
            self.repo.move_ref(self.record_ref, remote, local)
            self.taken_in += 1
            return
        rebased = runners.rebase_record(self.repo, local, remote, branch_ref=self.branch_ref,
                                        pushed_branch=self.repo.rev(self.tracking_branch), unpublished=unpublished,
                                        lost_start=lost_start)
        self.repo.move_ref(self.record_ref, rebased.commit, local)
        # A push refused twice renumbers twice: the maps say where each attempt and keep was when the push
        # began, so the journal finds them (our 0 became 1, then 2: 0 -> 2, not 0 -> 1 -> someone else's).
        dropped = {self._original(ours): theirs for ours, theirs in rebased.dropped.items()}
        self.renumbered = {old: new for old, new in _chain(self.renumbered, rebased.numbers).items()
                           if old not in dropped}
        self.rewritten = _chain(self.rewritten, rebased.shas)
        self.dropped.update(dropped)
        self.taken_in += rebased.taken_in

    def _original(self, number: int) -> int:
        """The number an attempt of ours had when the push began, given the one it has now."""
        return next((old for old, new in self.renumbered.items() if new == number), number)


def _chain(first: dict[K, K], then: dict[K, K]) -> dict[K, K]:
    """first, then then, as one map from what was there before first to what is there after then."""
    chained = {old: then.get(new, new) for old, new in first.items()}
    chained.update({old: new for old, new in then.items() if old not in first.values()})
    return {old: new for old, new in chained.items() if old != new}
