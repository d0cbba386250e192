"""A lab whose pipeline code is an attack: each test puts one in and checks the sandbox stops it.

The evaluation (protected) imports model/pipeline.py, the agent's code, and prints its number. An attack
prints `score: 0` (a far better score than the start, 10) only when it succeeded; when the sandbox stops
it, it exits with status 1 and says why, so a stopped attack ends the experiment as a crash.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from arl_bot.loop import RunOptions, RunSummary, Session

from tests.labs import Lab, make_lab

EVAL = textwrap.dedent("""\
    import os, sys
    from pathlib import Path
    sys.path.insert(0, ".")
    from model import pipeline
    value = float(pipeline.run())
    if "AUTORESEARCH_OUTPUTS" in os.environ:  # with a scorer: leave the prediction for it
        Path(os.environ["AUTORESEARCH_OUTPUTS"], "prediction.txt").write_text(str(value))
    print(f"score: {value}")
    """)

# The agent copies the attack the test chose into the pipeline.
AGENT = textwrap.dedent("""\
    import shutil
    shutil.copy("attack.py", "model/pipeline.py")
    print("try the attack")
    """)

# A trusted scorer: reads the prediction the pipeline left in its outputs, never imports its code.
SCORE = textwrap.dedent("""\
    import os
    from pathlib import Path
    prediction = float((Path(os.environ["AUTORESEARCH_OUTPUTS"]) / "prediction.txt").read_text())
    print(f"score: {abs(prediction - 3.0)}")
    """)


def attack(body: str) -> str:
    """Pipeline code that runs body; body returns normally only when the attack worked."""
    return "def run():\n" + textwrap.indent(textwrap.dedent(body), "    ") + "\n    return 0.0\n"


def sandbox_lab(tmp_path: Path, attack_code: str, *, sandbox: str = "{kind: bubblewrap}",
                evaluate_extra: str = "", python: str = sys.executable, agent_code: str = AGENT) -> Lab:
    """A committed lab whose agent installs attack_code as the pipeline."""
    config = textwrap.dedent(f"""\
        version: 1
        loops:
          demo:
            editable: ["model/**"]
            protected: ["eval/**", "agent.py", "attack.py"]
            metric: {{name: score, goal: minimize}}
            evaluate:
              command: "{python} eval/run.py"
              timeout: 20
              seeds: [1]
        {textwrap.indent(evaluate_extra, " " * 6)}
            agent: {{kind: command, command: "{python} agent.py", timeout: 20}}
            sandbox: {sandbox}
            budget: {{experiments: 1}}
        """)
    files = {
        "model/pipeline.py": "def run():\n    return 10.0\n", "model/__init__.py": "",
        "eval/run.py": EVAL, "eval/score.py": SCORE, "agent.py": agent_code, "attack.py": attack_code,
    }
    return make_lab(tmp_path, ["0"], config_text=config, files=files)


def run_once(lab: Lab) -> RunSummary:
    """Baseline plus one experiment, pushing nothing."""
    return Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, dry_run=True)).run()
