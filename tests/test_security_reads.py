"""Files the bot reads where an agent or an evaluation could write: no link followed, no FIFO, nothing unbounded.

Each test runs the real CLI (`arl-bot run --dry-run`) on a lab under real bubblewrap, with a secret at the
start of the bot's environment (so at the start of its /proc/self/environ) and a root-only file outside
the sandbox's view (tmp_path is under /tmp, which is private inside bubblewrap). A hostile agent or
pipeline swaps a file the bot reads for a link to one of them, a FIFO, /dev/zero, or something huge.
The secret must reach neither the record, nor a commit, nor the prompt, and the run must end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from arl_bot import paramfile, safefile
from arl_bot.paramfile import ParamFileError
from arl_bot.trusted import copy_trusted

from tests.labs import Lab, make_lab

ARL = [sys.executable, "-m", "arl_bot.cli"]
PY = sys.executable

# The evaluation: imports the agent's pipeline, writes $AUTORESEARCH_RESULT unless the pipeline already
# put something there, and prints the value too (for the default parse).
EVAL = textwrap.dedent("""\
    import json, os, sys
    from pathlib import Path
    sys.path.insert(0, ".")
    from model import pipeline
    value = float(pipeline.run())
    result = os.environ.get("AUTORESEARCH_RESULT")
    if result and not os.path.lexists(result):
        Path(result).write_text(json.dumps({"score": value}))
    print(f"score: {value}")
    """)

# Installs the attack as the pipeline, then runs whatever else the test adds.
AGENT = "import shutil\nshutil.copy('attack.py', 'model/pipeline.py')\n"


@dataclass(frozen=True)
class Secret:
    """What the agent must never get to see through the bot."""

    value: str  # in the bot's environment, first, and in the root-only file
    file: Path  # mode 600, outside the sandbox's view; it holds valid JSON and valid Python


@pytest.fixture
def secret(tmp_path: Path) -> Secret:
    value = f"SECRET{uuid.uuid4().hex}"
    path = tmp_path / "root-only.json"
    path.write_text(json.dumps({"score": 0.5, "token": value}) + "\n")
    path.chmod(0o600)
    return Secret(value, path)


def lab(tmp_path: Path, *, agent: str = "", pipeline: str = "return 0.0", evaluate_extra: str = "",
        files: dict[str, str] | None = None, evaluate: str | None = None) -> Lab:
    """A lab under bubblewrap whose agent installs `pipeline` (the body of run()) and then runs `agent`.

    evaluate replaces the whole `evaluate:` mapping (a flow mapping on one line); evaluate_extra adds keys.
    """
    evaluate = evaluate or f'{{command: "{PY} eval/run.py", timeout: 20, seeds: [1]}}'
    config = textwrap.dedent(f"""\
        version: 1
        loops:
          demo:
            editable: ["model/**"]
            protected: ["eval/**", "tests/**", "agent.py", "attack.py"]
            metric: {{name: score, goal: minimize}}
            evaluate: {{{evaluate[1:-1]}{", " if evaluate_extra else ""}{evaluate_extra}}}
            agent: {{kind: command, command: "{PY} agent.py", timeout: 20}}
            sandbox: {{kind: bubblewrap}}
            budget: {{experiments: 1}}
        """)
    attack = "def run():\n" + textwrap.indent(textwrap.dedent(pipeline), "    ") + "\n"
    return make_lab(tmp_path, ["0"], config_text=config, files={
        "model/pipeline.py": "def run():\n    return 10.0\n", "model/__init__.py": "", "eval/run.py": EVAL,
        "agent.py": AGENT + textwrap.dedent(agent), "attack.py": attack, **(files or {})})


def run_bot(lab: Lab, secret: Secret) -> tuple[dict[str, object], str]:
    """`arl-bot run --dry-run` with the secret first in its environment; the attempt and all it printed."""
    env = {"ARL_TEST_BOT_SECRET": secret.value, **os.environ}
    done = subprocess.run([*ARL, "run", "--dry-run", "--experiments", "1", "--progress", "plain"], cwd=lab.root,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = subprocess.run([*ARL, "results", "--json"], cwd=lab.root, capture_output=True, text=True,
                             timeout=60, check=True).stdout
    attempts = json.loads(results)
    attempts = attempts["attempts"] if isinstance(attempts, dict) else attempts
    assert attempts[0]["status"] == "baseline", attempts[0]
    everything = done.stdout + done.stderr + results + all_git_objects(lab)
    return attempts[1], everything


def all_git_objects(lab: Lab) -> str:
    """Every object in the lab's repository: commits (their messages), the record, trees and blobs."""
    return subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=lab.root,
                          capture_output=True, check=True).stdout.decode("utf-8", errors="replace")


def test_description_file_linked_to_the_bots_environ(tmp_path: Path, secret: Secret) -> None:
    attempt, seen = run_bot(lab(tmp_path, agent="""\
        import os
        os.symlink("/proc/self/environ", os.environ["AUTORESEARCH_DESCRIPTION_FILE"])
        """), secret)
    assert secret.value not in seen
    assert attempt["status"] == "crash"
    assert "AUTORESEARCH_DESCRIPTION_FILE refused" in attempt["reason"]
    assert "symbolic link" in attempt["reason"]


def test_description_file_linked_to_a_root_only_file(tmp_path: Path, secret: Secret) -> None:
    attempt, seen = run_bot(lab(tmp_path, agent=f"""\
        import os
        os.symlink({str(secret.file)!r}, os.environ["AUTORESEARCH_DESCRIPTION_FILE"])
        """), secret)
    assert secret.value not in seen
    assert attempt["status"] == "crash" and "symbolic link" in attempt["reason"]


def test_description_fifo_does_not_block_the_bot(tmp_path: Path, secret: Secret) -> None:
    attempt, _ = run_bot(lab(tmp_path, agent="""\
        import os
        os.mkfifo(os.environ["AUTORESEARCH_DESCRIPTION_FILE"])
        """), secret)
    assert attempt["status"] == "crash"
    assert "is a FIFO (named pipe); only regular files are read" in attempt["reason"]


@pytest.mark.parametrize(("make", "says"), [
    ("os.symlink(SECRET, RESULT)", "is a symbolic link; links are not followed"),
    ("os.symlink('/proc/self/environ', RESULT)", "is a symbolic link; links are not followed"),
    ("os.symlink('/dev/zero', RESULT)", "is a symbolic link; links are not followed"),
    ("os.mkfifo(RESULT)", "is a FIFO (named pipe)"),
    ("Path(RESULT).write_text(json.dumps({'score': 0.0, 'pad': 'x' * 5_000_000}))",
     "is larger than 1,000,000 bytes; not read"),
])
def test_result_file_that_is_not_a_small_regular_file(tmp_path: Path, secret: Secret, make: str, says: str) -> None:
    pipeline = f"""\
        import json, os
        from pathlib import Path
        SECRET, RESULT = {str(secret.file)!r}, os.environ["AUTORESEARCH_RESULT"]
        {make}
        return 0.0
        """
    attempt, seen = run_bot(lab(tmp_path, pipeline=pipeline, evaluate_extra="parse: {json: score}"), secret)
    assert secret.value not in seen
    assert attempt["status"] == "crash"  # not a keep with the root-only file's 0.5 as its metric
    assert attempt["metric"] is None
    assert attempt["reason"].startswith("no metric: the result file result.json: ")
    assert says in attempt["reason"]


def test_instructions_linked_to_a_root_only_file_never_reach_the_prompt(tmp_path: Path, secret: Secret) -> None:
    # The agent prints every prompt line that holds the secret: its output goes to the record.
    repo = lab(tmp_path, agent="""\
        import os
        from pathlib import Path
        for line in Path(os.environ["AUTORESEARCH_PROMPT_FILE"]).read_text().splitlines():
            if "SECRET" in line:
                print("prompt says:", line)
        """)
    (repo.root / "AGENT.md").unlink()
    (repo.root / "AGENT.md").symlink_to(secret.file)  # as if a kept experiment or a push had put it there
    repo.commit_all("instructions as a link")
    attempt, seen = run_bot(repo, secret)
    assert secret.value not in seen
    assert "prompt says" not in attempt["agent_log"]
    assert "instructions file refused: AGENT.md: is a symbolic link" in seen
    assert attempt["status"] == "keep"  # the run goes on with the default instructions


def test_a_validated_file_linked_to_a_root_only_file_is_invalid(tmp_path: Path, secret: Secret) -> None:
    # The root-only file holds a dict literal: valid Python. Followed, it would pass the check.
    attempt, seen = run_bot(lab(tmp_path, evaluate_extra="validate: [python]", agent=f"""\
        import os
        os.remove("model/pipeline.py")
        os.symlink({str(secret.file)!r}, "model/pipeline.py")
        """), secret)
    assert secret.value not in seen
    assert attempt["status"] == "invalid"
    assert attempt["reason"].startswith("model/pipeline.py: is a symbolic link; links are not followed")


def test_the_trusted_copy_follows_no_link_and_refuses_a_fifo(tmp_path: Path, secret: Secret) -> None:
    repo = make_lab(tmp_path, ["0"], files={"eval/data/labels.txt": "1 2 3\n", "eval/latest": "data"})
    (repo.root / "eval" / "latest").unlink()
    (repo.root / "eval" / "latest").symlink_to("data")  # a link in the base is copied as a link
    repo.commit_all("a link in the base")
    loop = repo.loop()
    copied = copy_trusted(repo.root, loop, tmp_path / "copy")
    assert os.readlink(copied / "eval" / "latest") == "data"
    assert (copied / "eval" / "data" / "labels.txt").read_text() == "1 2 3\n"

    data = repo.root / "eval" / "data"  # a folder on the way swapped for a link to the root-only file's
    (data / "labels.txt").unlink()
    data.rmdir()
    data.symlink_to(secret.file.parent)
    (secret.file.parent / "labels.txt").write_text(secret.value)
    with pytest.raises(safefile.UntrustedFileError, match="its folder 'data' is a symbolic link"):
        copy_trusted(repo.root, loop, tmp_path / "copy2")
    assert secret.value not in "".join(p.read_text() for p in (tmp_path / "copy2").rglob("*") if p.is_file())

    data.unlink()
    (repo.root / "eval" / "run.py").unlink()
    os.mkfifo(repo.root / "eval" / "run.py")
    with pytest.raises(safefile.UntrustedFileError, match="is a FIFO"):
        copy_trusted(repo.root, loop, tmp_path / "copy3")


def test_a_parameter_file_link_is_neither_read_nor_written_through(tmp_path: Path, secret: Secret) -> None:
    before = secret.file.read_text()
    tree = tmp_path / "tree"
    (tree / "conf").mkdir(parents=True)
    params = tree / "conf" / "params.json"
    params.symlink_to(secret.file)
    with pytest.raises(ParamFileError, match=r"conf/params\.json: is a symbolic link"):
        paramfile.read(params, root=tree)
    with pytest.raises(ParamFileError, match="is a symbolic link"):
        paramfile.write(params, {"score": 0.0}, root=tree)
    (tree / "conf").rename(tree / "real")
    (tree / "conf").symlink_to(secret.file.parent)  # a folder on the way is a link
    with pytest.raises(ParamFileError, match="its folder 'conf' is a symbolic link"):
        paramfile.write(tree / "conf" / secret.file.name, {"score": 0.0}, root=tree)
    assert secret.file.read_text() == before


def test_claude_codes_files_are_not_followed(tmp_path: Path, secret: Secret) -> None:
    from arl_bot.agents import claude_code

    workdir = tmp_path / "workdir"
    workdir.mkdir()
    (workdir / "claude.stderr").symlink_to(secret.file)
    assert claude_code._tail(workdir / "claude.stderr").startswith("(not read: claude.stderr: is a symbolic link")
    (workdir / "claude.stderr").unlink()
    os.mkfifo(workdir / "claude.stderr")  # would block a plain read for ever
    assert "is a FIFO" in claude_code._tail(workdir / "claude.stderr")

    # The cap's stop file: created where it is named, never at the target of a link the CLI put there.
    planted = tmp_path / "created-by-the-bot"
    (workdir / "claude.stop").symlink_to(planted)
    claude_code._raise(workdir / "claude.stop")  # what the API meter does when it refuses a call
    assert not planted.exists()


# Runs when the evaluation's interpreter exits, after pytest or the lab runner wrote its result file:
# the agent's code swaps that file for a link to the root-only file, which here holds a valid result.
SWAP_AT_EXIT = """\
import atexit, os, sys
def _swap():
    for arg in sys.argv:
        for flag in ("--junitxml=", "--result="):
            if arg.startswith(flag):
                os.remove(arg[len(flag):])
                os.symlink({secret!r}, arg[len(flag):])
    if "--result" in sys.argv:
        path = sys.argv[sys.argv.index("--result") + 1]
        os.remove(path)
        os.symlink({secret!r}, path)
atexit.register(_swap)
"""


@pytest.mark.parametrize("backend", ["pytest", "python"])
def test_a_backends_result_file_swapped_for_a_link(tmp_path: Path, secret: Secret, backend: str) -> None:
    if backend == "pytest":  # a junit report in which every test passed, and the secret names a test
        secret.file.write_text(f'<testsuites><testsuite><testcase classname="{secret.value}" name="t"/>'
                               "</testsuite></testsuites>")
        evaluate = "{backend: pytest, options: {args: [tests/]}, timeout: 60}"
        files = {"tests/test_it.py": "from model import pipeline\n\ndef test_it():\n    assert pipeline.run() < 5\n",
                 "conftest.py": ""}
    else:
        secret.file.write_text(json.dumps({"score": 0.0, "metrics": {}, "samples": [{"id": secret.value}]}))
        evaluate = '{backend: "eval/backend.py:Backend", options: {pipeline_dir: model, data_dir: model}, timeout: 60}'
        files = {"eval/backend.py": textwrap.dedent("""\
            import sys
            sys.path.insert(0, ".")
            class Backend:
                def evaluate(self, pipeline_dir, data_dir, sample_ids=None):
                    from model import pipeline
                    return type("R", (), {"score": float(pipeline.run()), "metrics": {}, "sample_results": []})()
            """)}
    repo = lab(tmp_path, evaluate=evaluate, files={
        **files, "attack.py": SWAP_AT_EXIT.format(secret=str(secret.file)) + "def run():\n    return 0.0\n"})
    attempt, seen = run_bot(repo, secret)
    assert secret.value not in seen
    assert attempt["status"] == "crash"
    assert "is a symbolic link; links are not followed" in attempt["reason"]
