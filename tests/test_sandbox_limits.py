"""A phase's limits are applied in its first process before it execs: cgroups joined, rlimits set, or no run."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from arl_bot import policy as phase_policy
from arl_bot import process
from arl_bot.config import PhaseSandbox, SandboxSettings
from arl_bot.sandbox.base import NOTE_PREFIX, Limits
from arl_bot.sandbox.bubblewrap import BubblewrapSandbox
from arl_bot.sandbox.limits import CANNOT_CONFINE, Confinement


def sh(command: str, tmp_path: Path, confinement: Confinement, path: str = "/usr/bin:/bin") -> process.ProcessResult:
    return process.run(["/bin/sh", "-c", command], cwd=tmp_path, env={"PATH": path}, timeout=30,
                       child_setup=confinement.child_setup(), spawn_on=confinement.spawn_on())


def test_the_first_process_starts_inside_the_phases_cgroups(tmp_path: Path) -> None:
    with Confinement(Limits(memory_mb=512, processes=300)) as confinement:
        result = sh("cat /proc/self/cgroup", tmp_path, confinement)
        groups = [*confinement.groups.values(), *([confinement.cell.group] if confinement.cell else [])]
    assert result.ok, result.stderr
    if not groups:  # this host lets the bot make no cgroup: the limits fell back to rlimits, which it says
        assert confinement.enforced["processes"].startswith("RLIMIT_NPROC")
        return
    for group in groups:
        assert any(line.endswith("/" + group.name) for line in result.stdout.splitlines()), (group, result.stdout)
    assert {"processes", "memory"} <= {name for name, how in confinement.enforced.items() if "cgroup" in how}


def test_a_phase_that_hits_the_process_limit_is_told_and_the_next_one_is_not(tmp_path: Path) -> None:
    sandbox = BubblewrapSandbox(SandboxSettings(evaluation=PhaseSandbox(processes=16)))
    tree, scratch = tmp_path / "tree", tmp_path / "scratch"
    tree.mkdir()
    scratch.mkdir()
    policy = phase_policy.evaluation_policy(tree, scratch, {})
    bomb = sandbox.run(["sh", "-c", "for i in $(seq 40); do sleep 5 & done; wait"], cwd=tree, policy=policy,
                       timeout=30)
    if "cgroup" not in sandbox.last_enforced["processes"]:  # no cgroup here: root ignores RLIMIT_NPROC
        return
    assert f"{NOTE_PREFIX}the process limit (16) was reached: a fork failed" in bomb.stderr, bomb.stderr
    calm = sandbox.run(["sh", "-c", "sleep 0.1 & sleep 0.1 & wait; echo calm"], cwd=tree, policy=policy,
                       timeout=30)
    assert calm.ok and calm.stdout == "calm\n", calm.stderr
    assert NOTE_PREFIX not in calm.stderr  # the failed forks counted before it are not its own


def test_phases_that_end_cleanly_reuse_one_cgroup_so_none_pays_for_a_move_into_one(tmp_path: Path) -> None:
    used = []
    for _ in range(3):
        with Confinement(Limits(processes=64)) as confinement:
            assert sh("true", tmp_path, confinement).ok
            used.append(confinement.cell)
    if used[0] is None:  # cgroup v2, or none the bot may write: each phase's child joins its own group
        return
    assert used == [used[0]] * 3


def test_what_a_phase_left_running_outside_its_process_group_is_killed_and_the_bot_is_spared(
        tmp_path: Path) -> None:
    # setsid: a new process group, which the phase's own kill misses; the cgroup still holds it.
    pid_file = tmp_path / "escaped"
    with Confinement(Limits(processes=64)) as confinement:
        result = sh(f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 60' & sleep 0.2", tmp_path, confinement)
    assert result.ok, result.stderr
    escaped = int(pid_file.read_text())
    if confinement.cell is None and "pids" not in confinement.groups:
        return  # no cgroup here: nothing but the process group holds a phase
    assert not Path(f"/proc/{escaped}").exists() or "Z" in Path(f"/proc/{escaped}/stat").read_text().split()[2]


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



def test_phases_side_by_side_each_get_their_own_process_limit(tmp_path: Path) -> None:
    # Two workers' evaluations at once: 12 processes each under a limit of 16 (together past it).
    sandbox = BubblewrapSandbox(SandboxSettings(evaluation=PhaseSandbox(processes=16)))
    trees = []
    for name in ("a", "b"):
        tree, scratch = tmp_path / name / "tree", tmp_path / name / "scratch"
        tree.mkdir(parents=True)
        scratch.mkdir()
        trees.append((tree, phase_policy.evaluation_policy(tree, scratch, {})))
    command = ["sh", "-c", "for i in $(seq 12); do sleep 0.5 & done; wait; echo done"]
    assert sandbox.run(["true"], cwd=trees[0][0], policy=trees[0][1], timeout=30).ok  # one cgroup free to reuse
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda t: sandbox.run(command, cwd=t[0], policy=t[1], timeout=30), trees))
    assert [(r.ok, r.stdout) for r in results] == [(True, "done\n")] * 2, [r.stderr for r in results]
