"""`arl-bot init --task NAME`: the starter lab of a built-in task (config, instructions, train.py, proposer)."""

from __future__ import annotations

from importlib import resources

from arl_bot.config import CONFIG_FILE
from arl_bot.errors import ArlError

from . import TASKS


def _template(*parts: str) -> str:
    node = resources.files("arl_bot.backends.torch_tasks") / "templates"
    for part in parts:
        node = node / part
    return node.read_text(encoding="utf-8")


def starter_files(task: str, loop: str) -> dict[str, str]:
    """Relative path -> text of the files a new lab for task needs; the loop is called loop."""
    if task not in TASKS:
        raise ArlError(f"no built-in task {task!r}", hint=f"choose one of: {', '.join(TASKS)}")
    return {
        CONFIG_FILE: _template(task, "autoresearch.yml").format(loop=loop),
        "AGENT.md": _template(task, "AGENT.md").format(loop=loop),
        "train.py": _template(task, "train.py"),
        "propose.py": _template("propose.py"),
    }
