"""Sandbox limits checked against the machine the loop runs on (RAM, the kernel's process limit)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from .errors import line_of
from .file import Config
from .loop import Loop


def _host_memory_mb() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return None


def _host_pid_max() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return None


def check_host(cfg: Config, loop: Loop) -> None:
    """Refuse sandbox limits this machine cannot grant (run where the loop runs: the gate's host differs)."""
    import yaml

    memory, pids = _host_memory_mb(), _host_pid_max()
    settings = loop.sandbox_settings
    for phase_name, phase in (("agent", settings.agent), ("evaluation", settings.evaluation)):
        problems = []
        if memory is not None and phase.memory_mb is not None and phase.memory_mb > memory:
            problems.append(("memory_mb", f"{phase.memory_mb} MB is more than this machine's {memory} MB of RAM"))
        if pids is not None and phase.processes is not None and phase.processes > pids:
            problems.append(("processes", f"{phase.processes} is more than the kernel allows ({pids}, "
                                          "/proc/sys/kernel/pid_max)"))
        for key, message in problems:
            loc = ("loops", loop.name, "sandbox", phase_name, key)
            root = yaml.compose(cfg._text, Loader=yaml.SafeLoader) if cfg._text else None
            raise ConfigError(f"{message}: the sandbox cannot grant it", path=cfg.path, line=line_of(root, loc),
                              key=".".join(loc), hint="lower it, or run the loop on a bigger machine")
