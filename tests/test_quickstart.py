"""The README's first command: the offline quickstart runs two loops end to end and prints PR bodies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_quickstart_runs_both_loops_with_keeps_and_discards_and_pushes_nothing(tmp_path: Path) -> None:
    lab = tmp_path / "quickstart"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "EXPERIMENTS": "6"}
    done = subprocess.run(["bash", str(ROOT / "examples/quickstart/run.sh"), str(lab)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for loop in ("curve", "tune"):
        assert f"<!-- arl-bot:pr-body loop={loop} -->" in done.stdout
        results = subprocess.run([sys.executable, "-m", "arl_bot.cli", "results", "--loop", loop, "--json"],
                                 cwd=lab, capture_output=True, text=True, check=True)
        statuses = [a["status"] for a in json.loads(results.stdout)["attempts"]]
        assert statuses[0] == "baseline" and len(statuses) == 7
        assert "keep" in statuses and "discard" in statuses, (loop, statuses)
        kept = subprocess.run(["git", "log", "--format=%s", f"main..autoresearch/{loop}"], cwd=lab,
                              capture_output=True, text=True, check=True).stdout.splitlines()
        assert len(kept) == statuses.count("keep")
    remotes = subprocess.run(["git", "remote"], cwd=lab, capture_output=True, text=True, check=True).stdout
    assert remotes == ""  # a dry run needs no remote and pushed nowhere
