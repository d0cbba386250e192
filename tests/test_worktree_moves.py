"""The hidden worktree after the repository moves or is copied, and beside the user's own checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from arl_bot.store import RecordStore

from tests.labs import Lab, git, make_lab

ARL = [sys.executable, "-m", "arl_bot.cli"]
TREE = Path(".arl-bot") / "worktrees" / "demo"


def arl(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*ARL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"arl-bot {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
    return result


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below folder (worktree files and git's metadata alike), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def keeps(root: Path) -> list[str]:
    record = RecordStore(Lab(root).repo, "demo").load()
    assert record is not None
    return [a.status for a in record.attempts]


def test_the_research_branch_can_be_checked_out_while_its_worktree_exists(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "9"])
    arl(lab.root, "run", "--dry-run", "--experiments", "1")
    assert (lab.root / TREE / "model/value.txt").read_text() == "8\n"
    lab.git("checkout", "--quiet", "autoresearch/demo")  # refused while the worktree had the branch checked out
    assert (lab.root / "model/value.txt").read_text() == "8\n"
    lab.git("checkout", "--quiet", "main")
    # The worktree is detached: a reset there (as the loop does after every attempt) leaves the branch alone.
    branch = lab.git("rev-parse", "autoresearch/demo")
    git(lab.root / TREE, "reset", "--quiet", "--hard", "main")
    assert lab.git("rev-parse", "autoresearch/demo") == branch
    arl(lab.root, "run", "--dry-run", "--experiments", "1")  # and it measures the branch, not the stray reset
    assert keeps(lab.root) == ["baseline", "keep", "discard"]


def test_a_worktree_left_with_the_branch_checked_out_is_detached(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "7"])
    arl(lab.root, "run", "--dry-run", "--experiments", "1")
    lab.git("worktree", "remove", "--force", str(lab.root / TREE))
    lab.git("worktree", "add", "--quiet", str(lab.root / TREE), "autoresearch/demo")  # as older versions left it
    arl(lab.root, "run", "--dry-run", "--experiments", "1")
    lab.git("checkout", "--quiet", "autoresearch/demo")
    assert (lab.root / "model/value.txt").read_text() == "7\n"


def test_a_run_warns_when_the_user_has_the_research_branch_checked_out(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "7"])
    arl(lab.root, "run", "--dry-run", "--experiments", "1")
    lab.git("checkout", "--quiet", "autoresearch/demo")
    result = arl(lab.root, "run", "--dry-run", "--experiments", "1")
    assert "your checkout has autoresearch/demo checked out" in result.stderr


def test_after_the_repository_moves_a_run_repairs_the_worktree_link(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "7"])
    arl(lab.root, "run", "--dry-run", "--experiments", "1")
    moved = tmp_path / "lab2"
    lab.root.rename(moved)  # `mv repo repo2`: the worktree's links name the old path
    arl(moved, "run", "--dry-run", "--experiments", "1")
    assert keeps(moved) == ["baseline", "keep", "keep"]
    assert str(moved / ".git") in (moved / TREE / ".git").read_text()
    assert git(moved / TREE, "rev-parse", "HEAD") == git(moved, "rev-parse", "autoresearch/demo")


def test_a_copy_runs_in_its_own_worktree_and_never_touches_the_original(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "7", "6"])
    arl(lab.root, "run", "--dry-run", "--experiments", "1")
    copy = tmp_path / "copy"
    shutil.copytree(lab.root, copy, symlinks=True)  # `cp -r repo copy`: the copy's worktree names the original's gitdir
    before = snapshot(lab.root)
    head = lab.git("rev-parse", "autoresearch/demo")
    arl(copy, "run", "--dry-run", "--experiments", "2")  # its first keep failed with "nonexistent object"
    assert keeps(copy) == ["baseline", "keep", "keep", "keep"]
    assert snapshot(lab.root) == before  # the original's worktree, its git metadata, every ref: byte for byte
    assert lab.git("rev-parse", "autoresearch/demo") == head
    assert git(lab.root / TREE, "rev-parse", "HEAD") == head
    assert str(copy / ".git") in (copy / TREE / ".git").read_text()
    assert (copy / TREE / "model/value.txt").read_text() == "6\n"
    git(copy, "checkout", "--quiet", "autoresearch/demo")  # no entry of the copy still names the original's tree
    assert git(copy, "worktree", "list").count(str(lab.root)) == 0


def test_a_copy_made_while_the_worktree_had_the_branch_checked_out_frees_the_branch(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "7"])
    arl(lab.root, "run", "--dry-run", "--experiments", "1")
    lab.git("worktree", "remove", "--force", str(lab.root / TREE))
    lab.git("worktree", "add", "--quiet", str(lab.root / TREE), "autoresearch/demo")  # an older version's layout
    copy = tmp_path / "copy"
    shutil.copytree(lab.root, copy, symlinks=True)
    before = snapshot(lab.root)
    arl(copy, "run", "--dry-run", "--experiments", "1")
    assert snapshot(lab.root) == before
    git(copy, "checkout", "--quiet", "autoresearch/demo")
    assert (copy / "model/value.txt").read_text() == "7\n"


def test_a_worktree_entry_naming_another_path_is_repaired(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "7"])
    arl(lab.root, "run", "--dry-run", "--experiments", "1")
    entry = Path(lab.git("rev-parse", "--git-common-dir"))
    entry = (lab.root / entry if not entry.is_absolute() else entry) / "worktrees" / "demo" / "gitdir"
    entry.write_text(str(tmp_path / "elsewhere" / ".git") + "\n")  # the entry's link names a path that is gone
    arl(lab.root, "run", "--dry-run", "--experiments", "1")
    assert Path(entry.read_text().strip()).resolve() == (lab.root / TREE / ".git").resolve()
    assert keeps(lab.root) == ["baseline", "keep", "keep"]


def test_a_linked_worktree_folder_is_refused_and_the_linked_clone_untouched(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "7"])
    arl(lab.root, "run", "--dry-run", "--experiments", "1")
    copy = tmp_path / "copy"
    shutil.copytree(lab.root, copy, symlinks=True, ignore=shutil.ignore_patterns(".arl-bot"))
    (copy / ".arl-bot").symlink_to(lab.root / ".arl-bot")  # the copy's hidden folder is the original's
    before = snapshot(lab.root)
    result = subprocess.run([*ARL, "run", "--dry-run", "--experiments", "1"], cwd=copy, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and "through a link" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(lab.root) == before
