"""What each phase may see and touch: environment allowlists and sandbox policies."""

from __future__ import annotations

import os
from pathlib import Path

from .sandbox import Policy

# Variables a build or a GPU job needs and that carry no secret.
SAFE_ENV = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
    "VIRTUAL_ENV", "CONDA_PREFIX", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
    "LD_LIBRARY_PATH", "TORCH_HOME", "HF_HOME", "HF_HUB_OFFLINE", "XDG_CACHE_HOME",
)


def base_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment with only the safe variables of ours, HOME set to home, plus extra."""
    env = {k: v for k, v in os.environ.items() if k in SAFE_ENV}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["HOME"] = str(home)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the tree: it would count as a change
    env.update(extra or {})
    return env


def agent_policy(tree: Path, workdir: Path, extra_env: dict[str, str]) -> Policy:
    """The agent may write the tree (the diff check polices what) and its workdir, and reach its API.

    workdir is outside the tree: it holds the prompt file and the agent's HOME.
    """
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    return Policy(phase="agent", writable=(tree, workdir), network=True, env=base_env(home, extra_env))


def evaluation_policy(tree: Path, scratch: Path, extra_env: dict[str, str]) -> Policy:
    """The evaluation may write its scratch dir and the tree's ignored outputs; no secrets, no network."""
    return Policy(phase="evaluation", writable=(tree, scratch), network=False,
                  env=base_env(scratch, extra_env))
