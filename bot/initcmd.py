"""`arl-bot init`: write a commented config, agent instructions, the workflow and .gitignore entries."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .config import CONFIG_FILE, LOOP_NAME
from .errors import ArlError

GITIGNORE_LINES = ("# arl-bot: scratch files of local runs", ".arl-bot/")
WORKFLOW_FILE = ".github/workflows/autoresearch.yml"  # the same text as arl-bot's own copy of it


def template(name: str) -> str:
    """A file shipped in arl_bot/templates."""
    return (resources.files("arl_bot") / "templates" / name).read_text(encoding="utf-8")


def init(root: Path, loop: str = "main", task: str | None = None) -> list[Path]:
    """Write the starter files into root (a built-in task's lab when task is set); refuse to overwrite any."""
    if not LOOP_NAME.match(loop):
        raise ArlError(f"loop name {loop!r} must be lowercase letters, digits and '-'")
    files = {
        root / CONFIG_FILE: template("autoresearch.yml").format(loop=loop),
        root / "AGENT.md": template("AGENT.md").format(loop=loop),
        root / WORKFLOW_FILE: template("workflow.yml"),  # verbatim: its ${{ }} are not format fields
    }
    if task is not None:
        from .backends.torch_tasks.starter import starter_files

        files.update({root / path: text for path, text in starter_files(task, loop).items()})
    existing = [p for p in files if p.exists()]
    if existing:
        raise ArlError(
            f"{', '.join(str(p.relative_to(root)) for p in existing)} already exists; nothing was written",
            hint="move it aside or edit it by hand; init never overwrites",
        )
    written = []
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    gitignore = root / ".gitignore"
    current = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    missing = [line for line in GITIGNORE_LINES if line not in current.splitlines()]
    if missing:
        prefix = "" if not current or current.endswith("\n") else "\n"
        gitignore.write_text(current + prefix + "\n".join(missing) + "\n", encoding="utf-8")
        written.append(gitignore)
    return written
