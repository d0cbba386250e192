"""Hostile agents against services, the holdout and score-only labels, under real bubblewrap.

Each attack leaves a trace only when it works (a marker file on the host, a secret in a log or the
record), and each test also checks that the attack ran, so a quiet failure cannot pass for a defence.
"""

from __future__ import annotations

import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from arl_bot.errors import ArlError, ConfigError
from arl_bot.loop import RunOptions, RunSummary, Session
from arl_bot.record import Record
from arl_bot.store import RecordStore

from tests.labs import PY, Lab, make_lab


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A folder outside /tmp: bubblewrap's private /tmp would hide a lab there whatever the policy says,
    and a real checkout lives elsewhere, where only `hidden` keeps the git directory from the sandbox."""
    folder = Path(tempfile.mkdtemp(prefix="arl-security-", dir="/var/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def lab_with(tmp_path: Path, loop: str, files: dict[str, str], agent: str) -> Lab:
    """A lab under bubblewrap whose agent (agent.py, protected) runs the given code once."""
    config = textwrap.dedent("""\
        version: 1
        loops:
          demo:
            @LOOP@
            agent: {kind: command, command: "@PY@ agent.py", timeout: 30}
            budget: {experiments: 1}
        """).replace("@LOOP@", textwrap.indent(textwrap.dedent(loop), " " * 4).strip()).replace("@PY@", PY)
    return make_lab(tmp_path, ["0"], config_text=config, files={"agent.py": agent, **files})


def run_once(lab: Lab) -> RunSummary:
    """Baseline plus one experiment, pushing nothing."""
    return Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, dry_run=True)).run()


def everything_recorded(record: Record) -> str:
    """The record as text: every attempt with its logs, reasons and extras, and every note."""
    return "\n".join([a.to_json() for a in record.attempts] + [n.to_json() for n in record.notes])


# -- services start from the base's files ------------------------------------------------------------

# A device bridge: answers each connection with an offset. It imports socket and json, the two
# modules the agent tries to shadow.
BRIDGE = textwrap.dedent("""\
    import json, socket, sys
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.listen()
    while True:
        conn, _ = sock.accept()
        conn.sendall(json.dumps(-1.5).encode())
        conn.close()
    """)

EVAL_DEVICE = textwrap.dedent("""\
    import os, socket
    from pathlib import Path
    value = float(Path("model/value.txt").read_text())
    with socket.create_connection(("127.0.0.1", int(os.environ["AUTORESEARCH_SERVICE_BRIDGE_PORT"]))) as conn:
        offset = float(conn.recv(64).decode())
    print(f"score: {value + offset}")
    """)


def test_an_agents_module_beside_a_service_or_on_its_path_never_runs_on_the_host(tmp_path: Path) -> None:
    marker = tmp_path / "ran-on-the-host"
    payload = f"from pathlib import Path\nPath({str(marker)!r}).write_text('agent code ran in the service')\n"
    # The service's script sits in model/, a folder the agent edits (the script itself is protected),
    # and its config puts lib/ (also editable) on PYTHONPATH. The agent shadows what the script imports.
    agent = textwrap.dedent(f"""\
        from pathlib import Path
        payload = {payload!r}
        Path("model/socket.py").write_text(payload)
        Path("model/json.py").write_text(payload)
        Path("lib").mkdir(exist_ok=True)
        Path("lib/sitecustomize.py").write_text(payload)
        Path("lib/json.py").write_text(payload)
        Path("model/value.txt").write_text("8")
        print("planted the shadowing modules")
        """)
    loop = f"""\
        editable: ["model/**", "lib/**"]
        protected: ["eval/**", "agent.py", "model/bridge.py"]
        metric: {{name: score, goal: minimize}}
        evaluate: {{command: "{PY} eval/device.py", timeout: 20, seeds: [1]}}
        sandbox: bubblewrap
        services:
          - {{name: bridge, command: "{PY} model/bridge.py {{port}}", port: 0, timeout: 20,
              env: {{PYTHONPATH: lib}}}}
        """
    lab = lab_with(tmp_path, loop, {"eval/device.py": EVAL_DEVICE, "model/bridge.py": BRIDGE,
                                    "lib/README": "helpers\n"}, agent)
    summary = run_once(lab)
    attempts = summary.record.attempts
    assert "planted the shadowing modules" in attempts[1].agent_log
    assert sorted(attempts[1].files) == ["lib/json.py", "lib/sitecustomize.py", "model/json.py",
                                         "model/socket.py", "model/value.txt"]
    assert not marker.exists()
    # and the service still started for both measurements: 10 - 1.5, then 8 - 1.5
    assert [(a.status, a.metric) for a in attempts] == [("baseline", 8.5), ("keep", 6.5)]


def test_a_service_whose_script_the_agent_may_edit_never_starts_and_says_why(tmp_path: Path) -> None:
    # Were it started from the tree, the agent's next version of svc.py would run on the host.
    loop = f"""\
        editable: ["model/**", "*.py"]
        protected: ["eval/**", "agent.py"]
        metric: {{name: score, goal: minimize}}
        evaluate: {{command: "{PY} eval/run.py", timeout: 20, seeds: [1]}}
        sandbox: bubblewrap
        services:
          - {{name: svc, command: "{PY} svc.py {{port}}", port: 0, timeout: 30}}
        """
    lab = lab_with(tmp_path, loop, {"svc.py": BRIDGE}, "")
    with pytest.raises(ArlError, match="service 'svc' exited with status 2 before it was ready"):
        run_once(lab)
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    log = record.attempts[0].eval_log
    assert "can't open file" in log and "copy of the base commit's protected and non-editable files" in log


# -- the holdout is out of the agent's reach ---------------------------------------------------------

HOLDOUT_SCORE = "7.654321"  # what the holdout evaluation prints: the number an agent must never learn

# Looks for the holdout's score through git and through the git directory's files, as the agent and as
# the pipeline (the agent's code, run by the evaluation); prints what it tried and FOUND if it worked.
PROBE = textwrap.dedent(f"""\
    import subprocess, zlib
    from pathlib import Path

    def probe(where):
        tree = Path.cwd()
        common = tree.parents[2] / ".git"  # the tree is <repo>/.arl-bot/worktrees/demo
        seen = []
        for argv in (["git", "log", "--all", "-p"], ["git", "log", "-p", "refs/autoresearch/demo/record"],
                     ["git", "--git-dir", str(common), "cat-file", "--batch-all-objects", "--batch"]):
            run = subprocess.run(argv, capture_output=True)
            seen.append(run.stdout)
            print(where, "tried", argv[1:3], "status", run.returncode)
        for path in common.rglob("*") if common.is_dir() else []:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            seen.append(data)
            try:
                seen.append(zlib.decompress(data))
            except zlib.error:
                pass
        found = any({HOLDOUT_SCORE!r}.encode() in data for data in seen)
        print(where, "searched", len(seen), "FOUND" if found else "nothing")
        return found
    """)


def test_the_agent_and_its_pipeline_cannot_read_holdout_results_from_the_git_directory(outside_tmp: Path) -> None:
    pipeline = PROBE + textwrap.dedent("""\

        def run():
            probe("pipeline")
            return 9.0
        """)
    agent = PROBE + textwrap.dedent("""\

        import shutil
        probe("agent")
        shutil.copy("attack.py", "model/pipeline.py")
        """)
    loop = f"""\
        editable: ["model/**"]
        protected: ["eval/**", "agent.py", "attack.py"]
        metric: {{name: score, goal: minimize}}
        evaluate: {{command: "{PY} eval/run.py", timeout: 30, seeds: [1]}}
        holdout: {{command: "{PY} eval/holdout.py", seeds: [1]}}
        sandbox: bubblewrap
        """
    run = "import sys\nsys.path.insert(0, '.')\nfrom model import pipeline\nprint(f'score: {pipeline.run()}')\n"
    files = {"model/__init__.py": "", "model/pipeline.py": "def run():\n    return 10.0\n", "eval/run.py": run,
             "eval/holdout.py": f"print('score: {HOLDOUT_SCORE}')\n", "attack.py": pipeline}
    lab = lab_with(outside_tmp, loop, files, agent)
    summary = run_once(lab)
    baseline, attempt = summary.record.attempts
    assert baseline.extra["holdout"]["metric"] == float(HOLDOUT_SCORE)  # it is in the record...
    assert "agent searched" in attempt.agent_log and "pipeline searched" in attempt.eval_log
    assert "FOUND" not in attempt.agent_log  # ...which neither the agent
    assert "FOUND" not in attempt.eval_log  # nor the code it wrote could read
    assert attempt.status == "keep" and attempt.metric == 9.0


def test_a_holdout_run_that_prints_held_out_labels_gets_none_of_them_into_the_record(
        outside_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = outside_tmp / "heldout" / "labels.txt"
    labels.parent.mkdir()
    labels.write_text("LABEL-cat-dog-cat-7f3a\n")
    # On the holdout, the agent's pipeline answers with the labels it can read instead of a number: the
    # parse error quotes the text (`'LABEL-...' is not a number`), and its log holds it too.
    agent = textwrap.dedent(f"""\
        from pathlib import Path
        Path("model/pipeline.py").write_text(
            "import os\\n"
            "def run():\\n"
            "    if os.environ.get('SPLIT') == 'holdout':\\n"
            "        text = open({str(labels)!r}).read().strip()\\n"
            "        print('labels:', text)\\n"
            "        return text\\n"
            "    return 9.0\\n")
        """)
    loop = f"""\
        editable: ["model/**"]
        protected: ["eval/**", "agent.py"]
        metric: {{name: score, goal: minimize}}
        evaluate: {{command: "{PY} eval/run.py", timeout: 30, seeds: [1]}}
        holdout:
          command: "SPLIT=holdout {PY} eval/run.py"
          parse: {{regex: "score: (\\\\S+)"}}
          must_not_worsen: true
        sandbox: bubblewrap
        """
    run = "import sys\nsys.path.insert(0, '.')\nfrom model import pipeline\nprint(f'score: {pipeline.run()}')\n"
    files = {"model/__init__.py": "", "model/pipeline.py": "def run():\n    return 10.0\n", "eval/run.py": run}
    lab = lab_with(outside_tmp, loop, files, agent)
    summary = run_once(lab)
    baseline, attempt = summary.record.attempts
    assert baseline.extra["holdout"]["metric"] == 10.0
    assert attempt.status == "discard"
    assert attempt.reason.endswith("but the holdout evaluation failed")
    assert attempt.extra["holdout"]["error"] == "holdout evaluation failed"
    assert "LABEL-" not in everything_recorded(summary.record)
    console = capsys.readouterr().err
    assert "holdout evaluation failed; its log, which is not recorded" in console
    assert "labels: LABEL-cat-dog-cat-7f3a" in console  # the run's own log, where a person can look


# -- labels only the scorer reads --------------------------------------------------------------------

# The pipeline predicts a number into its outputs, and tries to read the labels first.
SCORED_PIPELINE = textwrap.dedent("""\
    import os, sys
    from pathlib import Path
    labels = Path(sys.argv[1])
    try:
        print("pipeline read the labels:", labels.read_text().strip())
    except OSError as exc:
        print("pipeline could not read the labels:", exc.strerror)
    Path(os.environ["AUTORESEARCH_OUTPUTS"], "prediction.txt").write_text(Path("model/value.txt").read_text())
    """)

SCORER = textwrap.dedent("""\
    import os, sys
    from pathlib import Path
    label = float(Path(sys.argv[1]).read_text())
    prediction = float(Path(os.environ["AUTORESEARCH_OUTPUTS"], "prediction.txt").read_text())
    print(f"score: {abs(prediction - label)}")
    """)


def test_score_only_labels_are_read_by_the_scorer_alone(outside_tmp: Path) -> None:
    labels = outside_tmp / "labels" / "answer.txt"
    labels.parent.mkdir()
    labels.write_text("3.25\n")
    agent = textwrap.dedent(f"""\
        from pathlib import Path
        try:
            print("agent read the labels:", Path({str(labels)!r}).read_text().strip())
        except OSError as exc:
            print("agent could not read the labels:", exc.strerror)
        Path("model/value.txt").write_text("4")
        """)
    loop = f"""\
        editable: ["model/**"]
        protected: ["eval/**", "agent.py"]
        metric: {{name: score, goal: minimize}}
        evaluate:
          command: "{PY} eval/predict.py {labels}"
          score: "{PY} eval/score.py {labels}"
          timeout: 30
          seeds: [1]
        sandbox: {{kind: bubblewrap, score_only: ["{labels.parent}"]}}
        """
    lab = lab_with(outside_tmp, loop, {"eval/predict.py": SCORED_PIPELINE, "eval/score.py": SCORER}, agent)
    summary = run_once(lab)
    baseline, attempt = summary.record.attempts
    assert (baseline.status, baseline.metric) == ("baseline", 6.75)  # |10 - 3.25|: the scorer read them
    assert (attempt.status, attempt.metric) == ("keep", 0.75)
    assert "agent could not read the labels" in attempt.agent_log
    assert "pipeline could not read the labels" in attempt.eval_log
    assert "3.25" not in attempt.agent_log + attempt.eval_log + baseline.eval_log


def test_score_only_needs_host_paths_and_a_scorer() -> None:
    from arl_bot import config

    base = textwrap.dedent(f"""\
        version: 1
        loops:
          demo:
            editable: ["model/**"]
            metric: {{name: score, goal: minimize}}
            evaluate: {{command: "{PY} eval/run.py"@SCORE@}}
            agent: {{kind: command, command: "true"}}
            sandbox: {{kind: bubblewrap, score_only: [@PATH@]}}
        """)
    with pytest.raises(ConfigError, match="needs a trusted scorer"):
        config.parse(base.replace("@SCORE@", "").replace("@PATH@", "/srv/labels"))
    with pytest.raises(ConfigError, match="host paths"):
        config.parse(base.replace("@SCORE@", ', score: "python eval/score.py"').replace("@PATH@", "labels"))
    loop = config.parse(base.replace("@SCORE@", ', score: "python eval/score.py"').replace("@PATH@", "~/labels"))
    assert loop.loop(None).sandbox_settings.score_only == ["~/labels"]

