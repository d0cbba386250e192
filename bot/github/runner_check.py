"""Whether this machine can run the research job: pure checks over gathered facts, one adapter that gathers.

The research job runs on a self-hosted runner its owner set up by hand. Whatever is missing there (a
Python, bubblewrap, user namespaces, disk, a runner new enough for the pinned actions) must fail the job
at its start with what to install, not an hour later, and never by running the agent unsandboxed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import Loop
from ..errors import ArlError
from ..sandbox import choose_sandbox

MIN_PYTHON = (3, 11)  # pyproject.toml's requires-python
MIN_FREE_BYTES = 2 * 1024**3  # a checkout, its worktree and a venv; the evaluation's own data comes on top
# actions/checkout v5 and actions/setup-python v6, which the workflow pins, run on node24: the runner
# must be 2.327.1 or later (their release notes), else the job fails before arl-bot starts.
MIN_RUNNER = (2, 327, 1)
BWRAP_INSTALL = "sudo apt-get install bubblewrap (Fedora: sudo dnf install bubblewrap)"
USERNS_FIX = ("sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, and keep it across reboots with "
              "echo kernel.apparmor_restrict_unprivileged_userns=0 | sudo tee /etc/sysctl.d/60-bwrap.conf "
              "(Ubuntu 24.04's AppArmor blocks the unprivileged user namespaces bwrap needs)")
COMMENT_EVENTS = ("issue_comment", "pull_request_review_comment")
TWO_JOB_WORKFLOW = ("the two-job workflow `arl-bot init` writes (.github/workflows/autoresearch.yml: `phase: gate` "
                    "on ubuntu-latest, `phase: research` on your runner)")


@dataclass(frozen=True)
class Facts:
    """What the adapter found on this machine."""

    python: tuple[int, int, int]
    bwrap: str | None  # its path, or None when not on PATH
    bwrap_error: str  # why `bwrap --ro-bind / / true` failed; empty when it ran (or bwrap is absent)
    free_bytes: int
    disk_path: str
    runner_version: tuple[int, ...] | None
    runner_note: str  # why the runner version is unknown


@dataclass(frozen=True)
class Problem:
    """One missing piece and how to put it there."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}\n    fix: {self.fix}"


class RunnerNotReady(ArlError):
    """The runner lacks something the research job needs; nothing has run yet."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        lines = "\n".join(f"- {p}" for p in problems)
        super().__init__(f"this runner cannot run the research job yet:\n{lines}",
                         hint="fix these on the runner (`arl-bot doctor` there checks them again), then retry; "
                              "docs/github.md, \"Install it\", lists what a runner needs")
        self.problems = list(problems)


# --- pure checks -------------------------------------------------------------------------------------


def check_python(version: tuple[int, int, int]) -> list[Problem]:
    """The Python arl-bot runs on is new enough."""
    if version[:2] >= MIN_PYTHON:
        return []
    have = ".".join(map(str, version))
    return [Problem(f"Python {have} is older than {'.'.join(map(str, MIN_PYTHON))}",
                    "install python3.11 or newer with its venv module (Ubuntu: sudo apt-get install python3.12 "
                    "python3.12-venv) and make it the runner's python3, or set the action's python-version")]


def check_bwrap(path: str | None, error: str) -> list[Problem]:
    """bubblewrap is installed and may create the user namespaces it needs."""
    if path is None:
        return [Problem("bubblewrap (`bwrap`) is not installed: the agent would run unsandboxed", BWRAP_INSTALL)]
    if error:
        return [Problem(f"bubblewrap is installed ({path}) but cannot start a sandbox: {error}", USERNS_FIX)]
    return []


def check_disk(free_bytes: int, where: str, minimum: int = MIN_FREE_BYTES) -> list[Problem]:
    """Enough free disk for the checkout, its worktree and arl-bot's venv."""
    if free_bytes >= minimum:
        return []
    return [Problem(f"only {free_bytes / 1024**3:.1f} GiB free at {where}; the research job needs "
                    f"{minimum / 1024**3:.0f} GiB or more", "free disk space on the runner (old _work folders, "
                    "docker system prune, pip and model caches)")]


def check_runner(version: tuple[int, ...] | None) -> list[Problem]:
    """The runner is new enough for the node24 actions the workflow pins; unknown is not a problem."""
    if version is None or version >= MIN_RUNNER:
        return []
    have, need = ".".join(map(str, version)), ".".join(map(str, MIN_RUNNER))
    return [Problem(f"the Actions runner is {have}; the pinned actions (node24) need {need} or later",
                    "update the runner (./config.sh remove, download the current release, ./config.sh again), "
                    "or let it update itself by not starting it with --disableupdate")]


def needs_bubblewrap(loops: Iterable[Loop]) -> bool:
    """Whether any of these loops would use bubblewrap (named, or the default where it is installed)."""
    return any(loop.sandbox_settings.kind in (None, "bubblewrap") for loop in loops)


def problems(facts: Facts, loops: Sequence[Loop] | None) -> list[Problem]:
    """Every problem these facts show; bubblewrap counts only where a loop uses it (None: any loop)."""
    found = check_python(facts.python)
    if loops is None or needs_bubblewrap(loops):
        found += check_bwrap(facts.bwrap, facts.bwrap_error)
    return found + check_disk(facts.free_bytes, facts.disk_path) + check_runner(facts.runner_version)


def phase_problem(phase: str, event_name: str, runner_environment: str) -> str:
    """Why this phase must not run here, or empty: a comment read on a self-hosted runner is a stranger's text
    on the machine that holds the GPU and the model key, before anyone checked who wrote it."""
    if phase == "all" and event_name in COMMENT_EVENTS and runner_environment == "self-hosted":
        return (f"`phase: all` on a {event_name} event runs on this self-hosted runner: anyone's comment would be "
                f"read here, next to your GPU and secrets, before its author's permission is checked. Use "
                f"{TWO_JOB_WORKFLOW}, or `phase: gate` on a GitHub-hosted runner")
    return ""


def parse_version(text: str) -> tuple[int, ...] | None:
    """2.327.1 from `Runner.Listener --version`'s output."""
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(part) for part in found.groups()) if found else None


# --- the adapter -------------------------------------------------------------------------------------


def gather(env: Mapping[str, str], workdir: Path, runner_dir: Path | None = None) -> Facts:
    """Look at this machine: the interpreter, bwrap (and whether it can start), disk, the runner's version."""
    bwrap = shutil.which("bwrap")
    error = ""
    if bwrap is not None:
        try:
            run = subprocess.run([bwrap, "--ro-bind", "/", "/", "true"], capture_output=True, text=True,
                                 timeout=30, check=False)
            if run.returncode != 0:
                error = (run.stderr.strip() or f"exit code {run.returncode}")[:300]
        except (OSError, subprocess.TimeoutExpired) as exc:
            error = str(exc)[:300]
    where = workdir if workdir.exists() else Path.cwd()
    version, note = runner_version(env, runner_dir)
    return Facts(python=(sys.version_info[0], sys.version_info[1], sys.version_info[2]), bwrap=bwrap,
                 bwrap_error=error, free_bytes=shutil.disk_usage(where).free, disk_path=str(where),
                 runner_version=version, runner_note=note)


def runner_version(env: Mapping[str, str], runner_dir: Path | None = None) -> tuple[tuple[int, ...] | None, str]:
    """The Actions runner's version from its bin/Runner.Listener, or None and why not.

    No environment variable holds it. The runner lives two folders above RUNNER_WORKSPACE
    (<runner>/_work/<repo>) unless its work folder was moved elsewhere.
    """
    candidates = [runner_dir] if runner_dir is not None else []
    if env.get("RUNNER_WORKSPACE"):
        candidates.append(Path(env["RUNNER_WORKSPACE"]).parent.parent)
    for folder in candidates:
        listener = folder / "bin" / "Runner.Listener"
        if not os.access(listener, os.X_OK):
            continue
        try:
            out = subprocess.run([str(listener), "--version"], capture_output=True, text=True, timeout=30,
                                 check=False).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"{listener} --version failed: {exc}"
        found = parse_version(out)
        return found, "" if found else f"{listener} --version printed no version"
    if not candidates:
        return None, "not inside a runner job (pass --runner-dir to check a runner's install)"
    return None, f"no bin/Runner.Listener in {', '.join(map(str, candidates))} (a moved work folder?)"


def sandbox_problems(loops: Iterable[Loop]) -> list[Problem]:
    """Loops that would run without a sandbox though their config does not say `sandbox: none`."""
    found = []
    for loop in loops:
        try:
            choose_sandbox(loop, require_isolation=True)
        except ArlError as exc:
            found.append(Problem(exc.message, exc.hint or ""))
    return found


def require_ready(env: Mapping[str, str], loops: Sequence[Loop]) -> None:
    """Fail before the research job uses the GPU when the runner lacks a piece or a loop has no sandbox."""
    facts = gather(env, Path(env.get("GITHUB_WORKSPACE") or Path.cwd()))
    print(f"arl-bot: runner check: {summary(facts)}", file=sys.stderr)  # the job log says what was checked
    found = problems(facts, loops) + sandbox_problems(loops)
    if found:
        raise RunnerNotReady(found)


def summary(facts: Facts) -> str:
    """One line of what the check saw."""
    bwrap = "bubblewrap missing" if facts.bwrap is None else (
        "bubblewrap blocked" if facts.bwrap_error else "bubblewrap works")
    runner = ("runner " + ".".join(map(str, facts.runner_version)) if facts.runner_version
              else f"runner version not checked ({facts.runner_note})")
    return (f"python {'.'.join(map(str, facts.python))}, {bwrap}, {facts.free_bytes / 1024**3:.1f} GiB free at "
            f"{facts.disk_path}, {runner}")


def require_loops_ready(env: Mapping[str, str], config_loops: Mapping[str, Loop], names: Iterable[str]) -> None:
    """require_ready for the loops named (unknown names are left to the research job to report)."""
    require_ready(env, [config_loops[name] for name in names if name in config_loops])


def report(loops: Sequence[Loop] | None, runner_dir: Path | None = None) -> tuple[str, bool]:
    """`arl-bot doctor`'s text and whether everything is in place."""
    facts = gather(os.environ, Path.cwd(), runner_dir)
    found = problems(facts, loops) + sandbox_problems(loops or [])
    bwrap_state = "missing" if facts.bwrap is None else ("blocked" if facts.bwrap_error else "works")
    lines = [f"python      {'.'.join(map(str, facts.python))} ({sys.executable})",
             f"bubblewrap  {bwrap_state}" + (f" ({facts.bwrap})" if facts.bwrap else ""),
             f"disk        {facts.free_bytes / 1024**3:.1f} GiB free at {facts.disk_path}",
             "runner      " + (".".join(map(str, facts.runner_version)) if facts.runner_version
                               else f"not checked: {facts.runner_note}")]
    if found:
        lines += ["", "problems:", *(f"- {p}" for p in found)]
    else:
        lines += ["", "ok: this machine can run the research job"]
    return "\n".join(lines), not found
