"""The bot's own git runs no code the repository or the agent controls, and no network git hangs the run.

Each hostile test plants a way for git to run a command (a nested repository's fsmonitor and hooks,
husky-style hooks under core.hooksPath, .gitattributes drivers, a submodule made a repository) from an
agent under real bubblewrap. The command would write a marker on the host: git runs outside the
sandbox, so only the bot's own git can write it there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from arl_bot import treecheck
from arl_bot.agents.filetools import FileTools
from arl_bot.errors import GitError
from arl_bot.git import Git, network_config
from arl_bot.github.gitauth import git_token
from arl_bot.record import Attempt

from tests.github_standin.git_http import GitHttpServer
from tests.labs import Lab, make_lab
from tests.sandbox_lab import attack, run_once, sandbox_lab

ARL = [sys.executable, "-m", "arl_bot.cli"]
HOOKS = ("pre-commit", "post-commit", "post-checkout", "post-merge", "pre-push", "post-index-change",
         "reference-transaction", "post-rewrite", "pre-auto-gc", "fsmonitor-watchman")
GOOD = attack("pass")  # a pipeline scoring 0.0: better than the start (10), so it is kept when valid


def worktree(lab: Lab) -> Path:
    """The loop's research worktree in lab."""
    return lab.root / ".arl-bot" / "worktrees" / "demo"


def experiment_one(lab: Lab) -> Attempt:
    """Run baseline and one experiment; return the experiment."""
    summary = run_once(lab)
    assert summary.record.attempts[0].status == "baseline", summary.record.attempts[0].reason
    return summary.record.attempts[1]


def hook_writer(marker: Path) -> str:
    """Agent code (a function) that writes an executable hook script appending its name to marker."""
    return textwrap.dedent(f"""\
        import os, stat
        from pathlib import Path
        def plant(folder):
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            for name in {HOOKS!r}:
                hook = folder / name
                hook.write_text("#!/bin/sh\\necho hook-" + name + " >> {marker}\\n")
                hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
        """)


def test_a_nested_repository_is_invalid_and_none_of_its_config_or_hooks_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    agent = hook_writer(marker) + textwrap.dedent(f"""\
        import shutil, subprocess
        quiet = ["-c", "user.name=a", "-c", "user.email=a@b", "-c", "core.fsmonitor=false"]
        subprocess.run(["git", "init", "-q", "model/sub"], check=True)
        Path("model/sub/x.py").write_text("x = 1\\n")
        subprocess.run(["git", *quiet, "-C", "model/sub", "add", "x.py"], check=True)
        subprocess.run(["git", *quiet, "-C", "model/sub", "commit", "-qm", "x"], check=True)
        with open("model/sub/.git/config", "a") as config:
            config.write('[core]\\n\\tfsmonitor = "echo fsmonitor >> {marker}; false"\\n')
        plant("model/sub/.git/hooks")
        # and a `.git` file pointing at it, one folder over
        Path("model/other").mkdir()
        Path("model/other/.git").write_text("gitdir: ../sub/.git\\n")
        shutil.copy("attack.py", "model/pipeline.py")
        print("planted")
        """)
    lab = sandbox_lab(tmp_path, GOOD, agent_code=agent)
    attempt = experiment_one(lab)
    assert attempt.status == "invalid", attempt.reason + attempt.agent_log
    assert "model/sub/.git" in attempt.reason and "model/other/.git" in attempt.reason
    assert not marker.exists(), marker.read_text()
    tree = worktree(lab)
    assert not (tree / "model" / "sub").exists() and not (tree / "model" / "other").exists()
    assert lab.git("rev-parse", "autoresearch/demo") == lab.git("rev-parse", "main")


def test_husky_hooks_the_agent_writes_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    agent = hook_writer(marker) + textwrap.dedent("""\
        import shutil
        plant(".husky")
        plant(".husky/_")
        shutil.copy("attack.py", "model/pipeline.py")
        """)
    lab = sandbox_lab(tmp_path, GOOD, agent_code=agent)
    lab.git("config", "core.hooksPath", ".husky")  # what `husky install` writes into the user's clone
    attempt = experiment_one(lab)
    assert attempt.status == "invalid"
    assert "outside editable" in attempt.reason and ".husky/" in attempt.reason
    assert not marker.exists(), marker.read_text()


def test_hooks_in_an_editable_folder_never_run_and_the_keep_is_what_was_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    agent = hook_writer(marker) + "import shutil\nplant('model/hooks')\nshutil.copy('attack.py', 'model/pipeline.py')\n"
    lab = sandbox_lab(tmp_path, GOOD, agent_code=agent)
    lab.git("config", "core.hooksPath", "model/hooks")
    attempt = experiment_one(lab)
    assert attempt.status == "keep", attempt.reason
    assert not marker.exists(), marker.read_text()
    assert attempt.sha is not None
    assert lab.git("show", f"{attempt.sha}:model/pipeline.py") + "\n" == GOOD


def test_gitattributes_cannot_make_git_run_a_filter_or_driver(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    agent = textwrap.dedent("""\
        import shutil
        from pathlib import Path
        Path("model/.gitattributes").write_text("* filter=tidy diff=tidy merge=tidy\\n")
        shutil.copy("attack.py", "model/pipeline.py")
        """)
    lab = sandbox_lab(tmp_path, GOOD, agent_code=agent)
    # Drivers the user's config defines; the tree only picks them. The clean filter also changes content:
    # had it run, the commit would hold 9.0 where 0.0 was evaluated.
    for key, value in {
        "filter.tidy.clean": f"echo clean >> {marker}; sed s/0.0/9.0/",
        "filter.tidy.smudge": f"echo smudge >> {marker}; cat",
        "filter.tidy.required": "true",
        "diff.tidy.textconv": f"echo textconv >> {marker}; cat",
        "diff.tidy.command": f"echo diff-command >> {marker}; true",
        "diff.external": f"echo external >> {marker}; true",
        "merge.tidy.driver": f"echo merge >> {marker}; true",
    }.items():
        lab.git("config", key, value)
    attempt = experiment_one(lab)
    assert attempt.status == "keep", attempt.reason
    assert not marker.exists(), marker.read_text()
    assert attempt.sha is not None
    assert lab.git("show", f"{attempt.sha}:model/pipeline.py") + "\n" == GOOD  # the bytes that were evaluated
    assert (worktree(lab) / "model" / "pipeline.py").read_text() == GOOD  # checked out unsmudged too


def test_config_an_agent_without_a_sandbox_writes_into_the_repository_is_read_before_git_runs_again(
        tmp_path: Path) -> None:
    # `sandbox: none`: the agent can write the repository's own config. It defines a clean filter, picks it
    # in the tree, and leaves the file's inode, size and mtime as they were: only its ctime tells.
    marker = tmp_path / "ran"
    agent = textwrap.dedent(f"""\
        import os, shutil, subprocess
        from pathlib import Path
        common = Path(subprocess.run(["git", "rev-parse", "--git-common-dir"], capture_output=True,
                                     text=True, check=True).stdout.strip()).resolve()
        config = common / "config"
        before = config.stat()
        body = ('[filter "tidy"]\\n\\tclean = "echo clean >> {marker}; sed s/0.0/9.0/"\\n'
                '\\trequired = true\\n')
        assert len(body) < before.st_size
        with open(config, "r+") as out:  # in place: the same inode
            out.write(body + "#" * (before.st_size - len(body) - 1) + "\\n")
        assert config.stat().st_size == before.st_size
        os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))
        Path("model/.gitattributes").write_text("* filter=tidy\\n")
        shutil.copy("attack.py", "model/pipeline.py")
        """)
    lab = sandbox_lab(tmp_path, GOOD, agent_code=agent, sandbox="none")
    lab.git("config", "user.signingkey", "x" * 400)  # room for the attacker's section in the same size
    attempt = experiment_one(lab)
    assert attempt.status == "keep", attempt.reason
    assert not marker.exists(), marker.read_text()  # git add ran with the filter emptied
    assert attempt.sha is not None
    assert lab.git("show", f"{attempt.sha}:model/pipeline.py") + "\n" == GOOD  # what was evaluated


def test_a_fifo_an_agent_without_a_sandbox_puts_in_place_of_the_tree_s_git_file_never_blocks_the_bot(
        tmp_path: Path) -> None:
    # `sandbox: none`: the tree's `.git` file (which names the worktree's gitdir) becomes a FIFO. Reading it
    # to see whether the config changed would block forever; the run must end, with git's words, no traceback.
    agent = "import os\nos.remove('.git')\nos.mkfifo('.git')\n"
    lab = sandbox_lab(tmp_path, GOOD, agent_code=agent, sandbox="none")
    done = subprocess.run([*ARL, "run", "--dry-run", "--experiments", "1"], cwd=lab.root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert "git add" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_gitattributes_conversions_cannot_make_the_commit_differ_from_what_was_evaluated(tmp_path: Path) -> None:
    # `text` turns CRLF into LF when staging, `ident` rewrites `$Id: ... $`: the pipeline prints a hash of
    # its own bytes as the evaluation saw them, to compare with a checkout of the kept commit.
    pipeline = attack("""\
        import hashlib
        print("SELF", hashlib.sha256(open(__file__, "rb").read()).hexdigest())
        """)
    agent = textwrap.dedent("""\
        from pathlib import Path
        Path("model/.gitattributes").write_text("pipeline.py text eol=lf ident\\n")
        code = "# $Id: forged $\\n" + Path("attack.py").read_text()
        Path("model/pipeline.py").write_bytes(code.replace("\\n", "\\r\\n").encode())
        """)
    lab = sandbox_lab(tmp_path, pipeline, agent_code=agent)
    attempt = experiment_one(lab)
    assert attempt.status == "keep", attempt.reason
    checked_out = (worktree(lab) / "model" / "pipeline.py").read_bytes()  # the kept commit, checked out
    assert b"\r" not in checked_out and b"forged" not in checked_out
    assert f"SELF {hashlib.sha256(checked_out).hexdigest()}" in attempt.eval_log


def test_a_submodule_in_the_base_cannot_be_made_a_repository(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    agent = hook_writer(marker) + textwrap.dedent(f"""\
        import shutil, subprocess
        subprocess.run(["git", "init", "-q", "model/sub"], check=True)
        with open("model/sub/.git/config", "a") as config:
            config.write('[core]\\n\\tfsmonitor = "echo fsmonitor >> {marker}; false"\\n')
        plant("model/sub/.git/hooks")
        Path("model/sub/extra.py").write_text("print('not in any commit')\\n")
        shutil.copy("attack.py", "model/pipeline.py")
        """)
    lab = sandbox_lab(tmp_path, GOOD, agent_code=agent)
    head = lab.git("rev-parse", "HEAD")
    lab.git("update-index", "--add", "--cacheinfo", f"160000,{head},model/sub")
    lab.git("commit", "--quiet", "-m", "a submodule")
    attempt = experiment_one(lab)
    assert attempt.status == "invalid", attempt.reason
    assert "model/sub/.git" in attempt.reason and "model/sub/extra.py" in attempt.reason
    assert not marker.exists(), marker.read_text()
    assert list((worktree(lab) / "model" / "sub").iterdir()) == []


# -- what the checks see, without a loop ---------------------------------------------------------

def test_hazards_finds_every_kind_of_nested_git_entry(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # the tree's own: fine
    (tmp_path / "a" / "b" / ".git").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / ".git").write_text("gitdir: /elsewhere\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / ".GIT").symlink_to(tmp_path / "a" / "b" / ".git")
    (tmp_path / "e").symlink_to(tmp_path / "a")  # not followed: its .git is found once, under a/
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "planted.py").write_text("")
    (tmp_path / "empty").mkdir()
    found = treecheck.hazards(tmp_path, ["sub", "empty"])
    assert found == ["a/b/.git", "c/.git", "d/.GIT", "sub/planted.py"]
    assert treecheck.hazards(tmp_path / "empty") == []


def test_remove_deletes_nested_repositories_even_when_locked_and_never_follows_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    tree = tmp_path / "tree"
    locked = tree / "m" / ".git" / "objects"
    locked.mkdir(parents=True)
    (locked / "x").write_text("")
    locked.chmod(0)
    (tree / "n").mkdir()
    (tree / "n" / ".git").symlink_to(outside)
    try:
        treecheck.remove(tree, treecheck.hazards(tree))
    finally:
        if locked.exists():
            locked.chmod(stat.S_IRWXU)
    assert not (tree / "m" / ".git").exists() and not (tree / "n" / ".git").is_symlink()
    assert (outside / "keep.txt").read_text() == "mine"


def test_file_tools_refuse_git_entries_at_any_depth(tmp_path: Path) -> None:
    tools = FileTools(root=tmp_path, editable=("model/**",), protected=())
    (tmp_path / "model" / "sub" / ".git").mkdir(parents=True)
    (tmp_path / "model" / "ok.py").write_text("")
    for path in ("model/sub/.git/config", "model/.GIT/hooks/pre-commit", "model/sub/.git"):
        text, error = tools.call("write_file", {"path": path, "content": "[core]\n\tfsmonitor = x\n"})
        assert error and "off limits" in text, path
    text, error = tools.call("read_file", {"path": "model/sub/.git/HEAD"})
    assert error and "off limits" in text
    listing, _ = tools.call("list_files", {})
    assert ".git" not in listing and "model/ok.py" in listing


# -- the environment of each git ---------------------------------------------------------------

LOGGING_GIT = """#!/bin/sh
{{ printf 'CALL %s\\n' "$*"; env; printf 'END\\n'; }} >> {log}
exec {real} "$@"
"""


def test_the_token_reaches_only_network_git_and_secrets_no_git_that_runs_locally(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab(tmp_path, ["1"], remote=True)
    bindir, log = tmp_path / "bin", tmp_path / "git.log"
    bindir.mkdir()
    (bindir / "git").write_text(LOGGING_GIT.format(log=log, real=shutil.which("git")))
    (bindir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_envsecret42")
    repo = Git(lab.root)
    with git_token("https://github.example", "t0ken-in-header"):
        assert network_config  # the header is there for fetch and push
        repo.rev("HEAD")
        repo.dirty()
        repo.objects.read_blobs([repo.run("rev-parse", "HEAD:values.txt")])  # the object reader, a long-lived cat-file
        repo.fetch("origin", ["+refs/heads/main:refs/heads/copy"])
        repo.push("origin", ["refs/heads/main:refs/heads/pushed"])
    assert not network_config  # and gone after the block
    calls = [chunk for chunk in log.read_text().split("CALL ")[1:]]
    header = "AUTHORIZATION: basic"
    network = [c for c in calls if " fetch " in c.split("\n")[0] or " push " in c.split("\n")[0]]
    local = [c for c in calls if c not in network]
    assert len(network) == 2 and len(local) >= 4
    assert all(header in c for c in network)
    for call in local:
        first = call.split("\n")[0]
        assert header not in call and "ghs_envsecret42" not in call, first
    assert any("cat-file" in c.split("\n")[0] for c in local)
    assert "t0ken-in-header" not in "".join(c.split("\n")[0] for c in calls)  # never on a command line
    for call in calls:  # every one but the config listing (which runs nothing) has hooks and fsmonitor off
        if "config --list" not in call.split("\n")[0]:
            assert "=core.fsmonitor\n" in call and "=core.hooksPath\n" in call, call.split("\n")[0]


def test_the_repositorys_config_cannot_choose_credential_helpers_ssh_or_upload_pack(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["1"], remote=True)
    marker = tmp_path / "ran"
    local = {
        "credential.helper": f"!f() {{ echo local-helper >> {marker}; }}; f",
        "core.sshCommand": f"echo local-ssh >> {marker}; exit 1",
        "remote.origin.uploadpack": f"echo local-upload >> {marker}; git-upload-pack",
        "remote.origin.receivepack": f"echo local-receive >> {marker}; git-receive-pack",
    }
    for key, value in local.items():
        lab.git("config", key, value)
    # The user's own (global) helper and ssh command: honoured.
    answer = "printf 'username=x-access-token\\npassword=tok\\n'"
    helper = f"!f() {{ echo global-helper >> {marker}; test $1 = get && {answer}; }}; f"
    lab.git("config", "--global", "credential.helper", helper)
    lab.git("config", "--global", "core.sshCommand", f"echo global-ssh >> {marker}; exit 1")
    repo = Git(lab.root)
    repo.fetch("origin", ["+refs/heads/main:refs/heads/from-file"])
    repo.push("origin", ["refs/heads/main:refs/heads/pushed"])
    with GitHttpServer(tmp_path, "tok") as server:
        lab.git("remote", "add", "web", f"{server.url}/remote.git")
        repo.fetch("web", ["+refs/heads/main:refs/heads/from-http"])
    lab.git("remote", "add", "far", "ssh://git@127.0.0.1:9/project.git")
    with pytest.raises(GitError):
        repo.fetch("far", ["refs/heads/main"])
    ran = marker.read_text().split()
    assert "global-helper" in ran and "global-ssh" in ran
    assert not [line for line in ran if line.startswith("local-")], ran
    assert lab.git("rev-parse", "from-http") == lab.git("rev-parse", "from-file") == lab.git("rev-parse", "main")


def test_config_from_the_environment_cannot_undo_the_forced_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = make_lab(tmp_path, ["1"])
    marker = tmp_path / "ran"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "reference-transaction").write_text(f"#!/bin/sh\necho hook >> {marker}\n")
    (hooks / "reference-transaction").chmod(0o755)
    # As if arl-bot ran under `git -c core.hooksPath=...` (GIT_CONFIG_PARAMETERS) and with config in the env.
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.hooksPath'='{hooks}'")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.hooksPath")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", str(hooks))
    repo = Git(lab.root)
    repo.move_ref("refs/heads/moved", repo.run("rev-parse", "HEAD"), None)
    assert not marker.exists()
    assert repo.run("config", "core.hooksPath") == os.devnull


# -- a remote that never answers -----------------------------------------------------------------

@pytest.fixture
def silent_remote() -> Iterator[str]:
    """An HTTP URL whose server accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/project.git"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.parametrize("command", [["results"], ["run", "--experiments", "1"]])
def test_a_remote_that_never_answers_fails_the_command_with_its_name(
        tmp_path: Path, silent_remote: str, command: list[str]) -> None:
    lab = make_lab(tmp_path, ["1"])
    lab.git("remote", "add", "origin", silent_remote.replace("http://", "http://user:pw@"))
    env = {**os.environ, "ARL_GIT_TIMEOUT": "2"}
    done = subprocess.run([*ARL, *command], cwd=lab.root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "origin" in done.stderr and silent_remote in done.stderr and "did not answer" in done.stderr
    assert "ARL_GIT_TIMEOUT" in done.stderr and "pw@" not in done.stderr
    assert "Traceback" not in done.stderr

