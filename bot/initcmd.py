"""`arl-bot init`: write a commented config, agent instructions and .gitignore entries."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .config import CONFIG_FILE, LOOP_NAME
from .errors import ArlError

GITIGNORE_LINES = ("# arl-bot: scratch files of local runs", ".arl-bot/")


def template(name: str) -> str:
    """A file shipped in arl_bot/templates."""
    return (resources.files("arl_bot") / "templates" / name).read_text(encoding="utf-8")


def init(root: Path, loop: str = "main") -> list[Path]:
    """Write the starter files into root; refuse to overwrite any; return what was written."""
    if not LOOP_NAME.match(loop):
        raise ArlError(f"loop name {loop!r} must be lowercase letters, digits and '-'")
    files = {
        root / CONFIG_FILE: template("autoresearch.yml").format(loop=loop),
        root / "AGENT.md": template("AGENT.md").format(loop=loop),
    }
    existing = [p for p in files if p.exists()]
    if existing:
        raise ArlError(
            f"{', '.join(str(p.relative_to(root)) for p in existing)} already exists; nothing was written",
            hint="move it aside or edit it by hand; init never overwrites",
        )
    written = []
    for path, text in files.items():
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
