"""Build benchmark fixtures fast: a lab repository and a record of N synthetic attempts."""

from __future__ import annotations

import json
import random
import subprocess
import textwrap
from pathlib import Path

from arl_bot.record import Attempt, Meta
from arl_bot.store import _shard_path, record_ref

IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}

CONFIG = textwrap.dedent("""\
    version: 1
    loops:
      bench:
        editable: ["model/**"]
        protected: ["eval/**"]
        metric: {name: score, goal: minimize}
        evaluate: {command: "true", seeds: [1]}
        agent: {kind: command, command: "true"}
        sandbox: none
        budget: {experiments: 1000, crashes: 1000}
    """)


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    """Run git with a fixed identity."""
    import os

    out = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=True,
                         env={**os.environ, **IDENTITY})
    return out.stdout.decode().strip()


def make_repo(root: Path) -> Path:
    """A committed lab with a model file and a config."""
    root.mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "model").mkdir()
    (root / "model" / "value.txt").write_text("100\n")
    (root / "eval").mkdir()
    (root / "eval" / "run.py").write_text("print('score: 1')\n")
    (root / ".autoresearch.yml").write_text(CONFIG)
    (root / "AGENT.md").write_text("Lower the score.\n")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "lab")
    return root


def synth_record(root: Path, loop: str, attempts: int, seed: int = 0) -> None:
    """Write a record of `attempts` attempts in one commit through git fast-import.

    Only baseline and discards/crashes, so the research branch stays at the base: the benchmark then
    measures the record's size, not a long branch.
    """
    rng = random.Random(seed)
    base = git(root, "rev-parse", "main")
    meta = Meta(loop=loop, base_branch="main", base_sha=base, created_at="2026-01-01T00:00:00Z",
                goal="minimize", metric="score")
    files: dict[str, bytes] = {"meta.json": json.dumps(meta.__dict__).encode()}
    for n in range(attempts):
        status = "baseline" if n == 0 else rng.choice(["discard"] * 6 + ["crash", "invalid"])
        metric = 100.0 if n == 0 else (None if status != "discard" else 100 + rng.random())
        attempt = Attempt(
            experiment=n, status=status, metric=metric,  # type: ignore[arg-type]
            description=f"try idea {n}: change the learning rate schedule and warmup",
            parent=base, sha=base if n == 0 else None, best_before=None if n == 0 else 100.0,
            seeds={"1": metric}, reason="" if status != "crash" else "exited with status 1",
            files=["model/value.txt"], started_at="2026-01-01T00:00:00Z", agent_log="ok\n" * 20,
            eval_log="score: 1\n" * 20, run_id="synth",
        )
        files[_shard_path("attempts", n, ".json")] = attempt.to_json().encode()
        if n:
            files[_shard_path("diffs", n, ".patch")] = (
                f"--- a/model/value.txt\n+++ b/model/value.txt\n@@ -1 +1 @@\n-100\n+{n}\n").encode()
    stream = [f"commit {record_ref(loop)}", "committer bench <bench@example.com> 0 +0000",
              "data 6", "synth"]
    chunks = ["\n".join(stream) + "\n"]
    for path, data in files.items():
        chunks.append(f"M 100644 inline {path}\ndata {len(data)}\n")
        chunks.append(data.decode() + "\n")
    git(root, "fast-import", "--quiet", stdin="".join(chunks).encode())
    git(root, "update-ref", f"refs/heads/autoresearch/{loop}", base)
