"""Finding the repository: git's own answer (one rev-parse), with the same refusals the adapter always made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from arl_bot.errors import GitError
from arl_bot.git import Git

from tests.labs import git, make_lab


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "sub" / "deeper").mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "sub" / "file.txt").write_text("x\n")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "one")
    return root


def test_the_root_and_common_dir_are_found_from_a_subfolder_only_when_asked(repo: Path) -> None:
    found = Git(repo / "sub" / "deeper", search_parents=True)
    assert (found.root, found.common_dir) == (repo.resolve(), (repo / ".git").resolve())
    with pytest.raises(GitError, match="is not inside a git repository"):
        Git(repo / "sub")


def test_a_linked_worktree_shares_the_common_dir(repo: Path, tmp_path: Path) -> None:
    git(repo, "worktree", "add", "--quiet", "--detach", str(tmp_path / "tree"), "HEAD")
    tree = Git(tmp_path / "tree")
    assert tree.root == (tmp_path / "tree").resolve()
    assert tree.common_dir == (repo / ".git").resolve()


def test_bare_repositories_and_plain_folders_are_refused_with_what_to_do(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet", "--bare", str(tmp_path / "bare.git"))
    with pytest.raises(GitError, match="is a bare repository"):
        Git(tmp_path / "bare.git")
    (tmp_path / "plain").mkdir()
    with pytest.raises(GitError, match="is not inside a git repository"):
        Git(tmp_path / "plain", search_parents=True)
    with pytest.raises(GitError, match="is not inside a git repository"):
        Git(tmp_path / "missing")


def test_git_dir_in_the_environment_cannot_point_the_bot_at_another_repository(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other"
    git(tmp_path, "init", "--quiet", str(other))
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # left by a calling git, e.g. a hook that runs arl-bot
    found = Git(repo)
    assert found.common_dir == (repo / ".git").resolve()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a folder to another user")
def test_a_repository_another_user_owns_is_named_as_such(repo: Path) -> None:
    for path in [repo, *repo.rglob("*")]:
        os.lchown(path, 12345, 12345)
    with pytest.raises(GitError, match="belongs to another user") as caught:
        Git(repo)
    assert "safe.directory" in (caught.value.hint or "")


def test_the_bots_refs_read_the_same_loose_or_packed(repo: Path) -> None:
    # The loop's own refs are read from their loose files (no git process); packed, git is asked.
    head = git(repo, "rev-parse", "HEAD").strip()
    for ref in ("refs/heads/autoresearch/demo", "refs/autoresearch/demo/record"):
        git(repo, "update-ref", ref, head)
    repository = Git(repo)
    assert repository.rev("refs/heads/autoresearch/demo") == head
    assert repository.rev("refs/autoresearch/demo/record") == head
    assert repository.rev("refs/autoresearch/other/record") is None
    git(repo, "pack-refs", "--all")
    assert not (repository.common_dir / "refs/autoresearch/demo/record").exists()
    assert repository.rev("refs/autoresearch/demo/record") == head
    assert repository.ref_value("refs/heads/autoresearch/demo") == head


def test_one_diff_gives_the_changes_and_the_patch_as_the_two_commands_do(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["1"], files={"model/f.txt": "a\nb\n", "model/bin": "\0\1\2", "model/gone": "x\n"})
    odd = ["model/new\nline.txt", "model/tab\tand space", "model/ünïcode", 'model/quote"d']
    (lab.root / "model/f.txt").write_text("a\nc\n")
    (lab.root / "model/f.txt").chmod(0o755)
    (lab.root / "model/bin").write_bytes(b"\0\1\3")
    (lab.root / "model/gone").unlink()
    for name in odd:
        (lab.root / name).write_text("new\n")
    lab.repo.stage_all()
    changes, patch = lab.repo.staged_diff("HEAD")
    assert changes == lab.repo.staged_changes("HEAD")
    assert patch == lab.repo.staged_patch("HEAD")
    assert {c.path for c in changes} == {"model/f.txt", "model/bin", "model/gone", *odd}
    assert "GIT binary patch" in patch and "new mode 100755" in patch
    lab.git("commit", "--quiet", "-m", "all of it")
    assert lab.repo.staged_diff("HEAD") == ([], "")
