"""The bubblewrap sandbox: a read-only view of the host, private /tmp, /proc and pids, no secrets."""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from .. import process
from ..config import SandboxSettings
from ..errors import ArlError
from ..process import ProcessResult
from .base import NOTE_PREFIX, Limits, Policy, Sandbox
from .limits import Confinement, DiskGuard

# Accelerators disappear behind bwrap's minimal /dev unless bound back in.
DEVICE_GLOBS = ("/dev/nvidia*", "/dev/dri", "/dev/kfd")
TMPFS_RAM_SHARE = 8  # without memory_mb, each private tmpfs may hold this fraction (1/8) of the host's RAM


class BubblewrapSandbox(Sandbox):
    """Runs each phase under `bwrap` as the issue's policy table says; limits via cgroups or rlimits."""

    name = "bubblewrap"

    def __init__(self, settings: SandboxSettings | None = None, *, cgroups: bool = True) -> None:
        super().__init__(settings)
        self.cgroups = cgroups  # tests turn cgroups off to exercise the rlimit fallback
        self.last_enforced: dict[str, str] = {}  # how the last run's limits were enforced

    def run(
        self, argv: list[str], *, cwd: Path, policy: Policy, timeout: float, stdin: str | None = None
    ) -> ProcessResult:
        """Run argv under bwrap; the pid namespace ends with it, so nothing it started survives."""
        policy = self.resolve(policy)
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise ArlError("sandbox bubblewrap: `bwrap` is not installed",
                           hint="apt-get install bubblewrap, or choose another `sandbox:`")
        with Confinement(policy.limits, cgroups=self.cgroups) as confinement:
            sized = _supports_size(bwrap)
            self.last_enforced = {**confinement.enforced, "tmpfs": (
                f"/tmp and /dev/shm up to {tmpfs_bytes(policy.limits) // 2**20:,} MB each" if sized
                else "/tmp and /dev/shm without a size: bwrap < 0.5 has no --size"),
                "writable folders": f"up to {tmpfs_bytes(policy.limits) // 2**20:,} MB, measured while it runs"}
            command = [bwrap, *bwrap_args(policy, cwd, sized=sized), "--", *argv]
            # The host folders the phase may write, but the tree (the agent's work; git holds it anyway).
            guard = DiskGuard([p for p in policy.writable if p != cwd], tmpfs_bytes(policy.limits))
            result = process.run(command, cwd=cwd, env=_outer_env(policy), timeout=timeout, stdin=stdin,
                                 watch=guard.over, child_setup=confinement.child_setup(),
                                 spawn_on=confinement.spawn_on(), die_with_parent=False)  # bwrap's own
            verdict = "; ".join(hit for hit in (confinement.verdict(), guard.reason) if hit)
        if verdict:
            result = replace(result, stderr=f"{result.stderr}\n{NOTE_PREFIX}{verdict}\n")
        return result


def bwrap_args(policy: Policy, cwd: Path, *, sized: bool = True) -> list[str]:
    """The bwrap options that build policy's view of the machine."""
    # The private /tmp and /dev/shm live in the host's memory: without a size, a phase could fill it
    # (and, without cgroups, far past its memory_mb). sized is False only for bwrap < 0.5 (no --size).
    size = ["--size", str(tmpfs_bytes(policy.limits))] if sized else []
    args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *size, "--tmpfs", "/tmp",
            *size, "--tmpfs", "/dev/shm"]
    for path in _toolchain_under_tmp(policy):
        args += ["--ro-bind", str(path), str(path)]
    for device in _devices():
        args += ["--dev-bind", device, device]
    # Order matters: later mounts cover earlier ones, so writable paths come after the private /tmp
    # and read-only exceptions after the writable paths that contain them.
    for path in policy.readable:
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    for path in policy.writable:
        args += ["--bind", str(path), str(path)]
    for path in policy.readonly:
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    for path in policy.hidden:
        if path.is_dir():
            args += ["--tmpfs", str(path), "--remount-ro", str(path)]
        elif path.exists():
            args += ["--ro-bind", "/dev/null", str(path)]
    args += ["--chdir", str(cwd), "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc",
             "--unshare-uts", "--unshare-cgroup-try", "--cap-drop", "ALL"]
    if not policy.network:
        args.append("--unshare-net")
    return args


def tmpfs_bytes(limits: Limits) -> int:
    """The size of each private tmpfs (and the cap on the writable folders): half of memory_mb when set,
    else an eighth of the host's RAM.

    Both together then hold at most memory_mb (a quarter of RAM without a limit). Under a memory cgroup
    their pages also count against the limit; under RLIMIT_AS they would not, so the size is what bounds them.
    """
    if limits.memory_mb is not None:
        return max(1, limits.memory_mb // 2) * 2**20
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // TMPFS_RAM_SHARE


@functools.cache
def _supports_size(bwrap: str) -> bool:
    """Whether this bwrap has --size (0.5.0 and later)."""
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    match = re.search(r"(\d+)\.(\d+)", out)
    return match is not None and (int(match.group(1)), int(match.group(2))) >= (0, 5)


@functools.cache
def _devices() -> tuple[str, ...]:
    """The accelerator device nodes, looked for once per process (a driver does not come and go between phases)."""
    return tuple(device for pattern in DEVICE_GLOBS for device in sorted(glob.glob(pattern)))


def _toolchain_under_tmp(policy: Policy) -> list[Path]:
    """Interpreters and PATH folders that live under /tmp, which the private /tmp would hide.

    A CI job that clones into /tmp and makes its virtual environment there still needs that Python,
    arl-bot itself and the tools in its checkout (the folder the bot runs in) inside the sandbox:
    read-only, like the rest of the host.
    """
    import arl_bot.backends  # the fixed APIs train scripts import (an editable install points into the clone)

    candidates = [sys.prefix, sys.base_prefix, policy.env.get("VIRTUAL_ENV", ""), os.getcwd(),
                  str(Path(arl_bot.__file__).parent), str(Path(arl_bot.backends.__file__).parent),
                  *policy.env.get("PATH", "").split(os.pathsep)]
    # Resolved anew for every phase, never remembered: a link swapped since the last phase must not
    # carry a bind to wherever it now points.
    found: list[Path] = []
    for text in candidates:
        if not text:
            continue
        path = Path(text).resolve()
        if path.is_relative_to("/tmp") and path != Path("/tmp") and path.exists() and path not in found:
            found.append(path)
    return found


def _outer_env(policy: Policy) -> dict[str, str]:
    # The child inherits bwrap's environment, which is exactly the policy's: never --setenv, which
    # would put an agent's API key on a command line that every user of the host can read.
    return dict(policy.env)
