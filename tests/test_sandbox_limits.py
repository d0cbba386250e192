"""A phase's limits are applied in its first process before it execs: cgroups joined, rlimits set, or no run."""

from __future__ import annotations

from pathlib import Path

from arl_bot import process
from arl_bot.sandbox.base import NOTE_PREFIX, Limits
from arl_bot.sandbox.limits import CANNOT_CONFINE, Confinement


def sh(command: str, tmp_path: Path, confinement: Confinement, path: str = "/usr/bin:/bin") -> process.ProcessResult:
    return process.run(["/bin/sh", "-c", command], cwd=tmp_path, env={"PATH": path}, timeout=30,
                       child_setup=confinement.child_setup())


def test_the_first_process_starts_inside_the_phases_cgroups(tmp_path: Path) -> None:
    with Confinement(Limits(memory_mb=512, processes=300)) as confinement:
        result = sh("cat /proc/self/cgroup", tmp_path, confinement)
        groups = dict(confinement.groups)
    assert result.ok, result.stderr
    if not groups:  # this host lets the bot make no cgroup: the limits fell back to rlimits, which it says
        assert confinement.enforced["processes"].startswith("RLIMIT_NPROC")
        return
    for group in groups.values():
        assert any(line.endswith("/" + group.name) for line in result.stdout.splitlines()), (group, result.stdout)


def test_rlimits_are_set_before_exec_without_prlimit(tmp_path: Path) -> None:
    # PATH without util-linux's prlimit: the limits no longer need it.
    with Confinement(Limits(memory_mb=512, cpu_seconds=77), cgroups=False) as confinement:
        result = sh("ulimit -t; ulimit -v", tmp_path, confinement, path=str(tmp_path))
    assert result.ok, result.stderr
    assert result.stdout.split() == ["77", str(512 * 1024)]


def test_a_phase_whose_cgroup_cannot_be_joined_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with Confinement(Limits(processes=64), cgroups=False) as confinement:
        confinement.groups["pids"] = tmp_path / "no-such-cgroup"  # removed under it, or never writable
        result = sh(f"touch {marker}", tmp_path, confinement)
        confinement.groups.clear()
    assert result.returncode == CANNOT_CONFINE
    assert not marker.exists()  # nothing ran outside its limits
    assert f"{NOTE_PREFIX}cannot apply the phase's limits" in result.stderr

