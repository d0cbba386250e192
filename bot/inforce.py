"""Which config a local run uses: the checkout's file, uncommitted changes included, and saying so."""

from __future__ import annotations

from pathlib import Path

from .git import Git


def config_note(repo: Git, path: Path) -> str:
    """A warning when the config in force has changes the commit lacks; empty when they agree.

    The bot reads the config from the checkout (it is what the user just edited), while the research
    branch and a run on GitHub see the committed file; the run says which one it follows.
    """
    try:
        relative = path.resolve().relative_to(repo.root.resolve())
    except ValueError:
        return ""  # a config from outside the repository (--config): nothing committed to compare with
    if not repo.run("status", "--porcelain", "--", str(relative)):
        return ""
    branch = repo.current_branch() or "HEAD"
    return (f"this run uses {relative} as it is in your checkout, uncommitted changes included; the research "
            f"branch keeps the version committed on {branch}, and a run on GitHub would use that one: commit it "
            "to make them agree")
