"""What each phase may see and touch: environment allowlists and sandbox policies."""

from __future__ import annotations

import os
from pathlib import Path

from .names import NEVER_PASSED
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


def passed_env(names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The named variables of ours that an agent's config passes on (`agent.pass_env`), where set."""
    return {name: os.environ[name] for name in names
            if name in os.environ and name not in NEVER_PASSED}


def agent_policy(tree: Path, workdir: Path, extra_env: dict[str, str]) -> Policy:
    """The agent may write the tree (the diff check polices what) and its workdir, and reach its API.

    workdir is outside the tree: it holds the prompt file and the agent's HOME. The tree's `.git` file
    stays read-only: pointed elsewhere, it would hand the bot's own git commands a config (hooks,
    fsmonitor) the agent wrote. The repository's git directory is hidden: it holds the record, and with
    it the holdout's results, in objects no ref filter could keep apart; so git does not work in the tree.
    """
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    return Policy(phase="agent", writable=(tree, workdir), network=True, env=base_env(home, extra_env),
                  readonly=(tree / ".git",), hidden=_outermost(git_dirs(tree)))


def evaluation_policy(tree: Path, scratch: Path, extra_env: dict[str, str]) -> Policy:
    """The evaluation reads the tree and writes only its scratch dir; no secrets, no network.

    It runs the agent's code, which could copy the record's holdout results into its log: the git
    directory is hidden here too.
    """
    return Policy(phase="evaluation", writable=(scratch,), network=False,
                  env=base_env(scratch, extra_env), readable=(tree,), hidden=_outermost(git_dirs(tree)))


def score_policy(source: Path, outputs: Path, result_dir: Path, extra_env: dict[str, str]) -> Policy:
    """The trusted scorer reads the base's files, the outputs and `sandbox.score_only`; it writes its result."""
    return Policy(phase="score", writable=(result_dir,), network=False,
                  env=base_env(result_dir, extra_env), readable=(source, outputs))


def git_dirs(tree: Path) -> tuple[Path, ...]:
    """The git directories a worktree's `.git` file points to (its own and the common one)."""
    dot_git = tree / ".git"
    if dot_git.is_dir():
        return (dot_git,)
    try:
        text = dot_git.read_text(encoding="utf-8").strip()
    except OSError:
        return ()
    if not text.startswith("gitdir:"):
        return ()
    gitdir = (tree / text.removeprefix("gitdir:").strip()).resolve()
    try:
        common = (gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    except OSError:
        return (gitdir,)
    return (common, gitdir)


def _outermost(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """paths without those inside another: a hidden folder is a read-only mount nothing more can go into."""
    return tuple(p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths))
