"""`arl-bot init`: write a commented config, agent instructions, the workflow and .gitignore entries."""

from __future__ import annotations

import json
import re
from importlib import metadata, resources
from pathlib import Path

from . import __version__
from .config import CONFIG_FILE
from .errors import ArlError
from .names import LOOP_NAME

GITIGNORE_LINES = ("# arl-bot: scratch files of local runs", ".arl-bot/")
WORKFLOW_FILE = ".github/workflows/autoresearch.yml"
DISTRIBUTION = "arl-bot"
HOME_LABELS = ("Repository", "Homepage")  # [project.urls] keys, first found wins
SOURCE_COMMIT = "SOURCE_COMMIT"  # templates/SOURCE_COMMIT: the release workflow writes the tag's SHA before it builds
ACTION_MARK = "ARL_BOT_ACTION"  # in templates/workflow.yml: replaced by owner/name@<sha>
VERSION_MARK = "ARL_BOT_VERSION"  # replaced by v<version>, the comment beside the pin
SHA = re.compile(r"[0-9a-f]{40}")
EDITABLE_GUESSES = (("train.py", "train.py"), ("model.py", "model.py"), ("main.py", "main.py"),
                    ("src/**", "src"))  # (glob, the path whose presence picks it), first found wins
EVAL_SCRIPT = "eval/run.py"
EVAL_PLACEHOLDER = '''"""A placeholder written by `arl-bot init`: replace it with your evaluation (protected)."""

import sys

sys.exit("eval/run.py is a placeholder written by `arl-bot init`: replace it with the evaluation that scores "
         "your project. It gets --seed N and must print one line `val_loss: <number>` (the metric named in "
         ".autoresearch.yml), or change `evaluate.command` there to a command that does.")
'''
GITHUB_URL = re.compile(r"^(?:git\+)?https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?$")


def template(name: str) -> str:
    """A file shipped in arl_bot/templates."""
    return (resources.files("arl_bot") / "templates" / name).read_text(encoding="utf-8")


def home() -> str:
    """arl-bot's repository, as pyproject.toml's [project.urls] declares it (the installed metadata)."""
    try:
        entries = metadata.metadata(DISTRIBUTION).get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        entries = []
    urls = dict(str(entry).split(", ", 1) for entry in entries if ", " in str(entry))
    for label in HOME_LABELS:
        if label in urls:
            return urls[label]
    raise ArlError("arl-bot's installed metadata names no Repository URL",
                   hint="reinstall arl-bot (in a checkout: pip install -e . --no-deps)")


def repository(url: str) -> str:
    """owner/name of a GitHub repository URL."""
    found = GITHUB_URL.match(url)
    if found is None:
        raise ArlError(f"{url!r} is not a GitHub repository URL",
                       hint="[project.urls] Repository in pyproject.toml must be https://github.com/OWNER/NAME")
    return found[1]


def source_commit() -> tuple[str, str] | None:
    """(owner/name, commit SHA) of the source this arl-bot was built from, where that is known.

    A release records its tag's commit at build time; `pip install git+https://github.com/...@<sha>`
    records the commit in the install's direct_url.json (PEP 610). An editable or plain local install
    knows no commit that GitHub has: that is None, never a guess such as a branch name.
    """
    recorded = resources.files("arl_bot") / "templates" / SOURCE_COMMIT
    if recorded.is_file():
        sha = recorded.read_text(encoding="utf-8").strip()
        if SHA.fullmatch(sha):
            return repository(home()), sha
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        text = None
    if not text:
        return None
    direct = json.loads(text)
    vcs = direct.get("vcs_info") or {}
    sha = str(vcs.get("commit_id", ""))
    if vcs.get("vcs") != "git" or not SHA.fullmatch(sha):
        return None
    url = str(direct.get("url", ""))
    # Installed from a fork on GitHub: pin the fork, the code that was actually installed.
    return (repository(url) if GITHUB_URL.match(url) else repository(home())), sha


def workflow(action_ref: str | None = None) -> str:
    """The workflow text with arl-bot's action pinned to a full commit SHA; refuses when none is known."""
    if action_ref is not None:
        if not SHA.fullmatch(action_ref):
            raise ArlError(f"--action-ref {action_ref[:60]!r} is not a full 40-character commit SHA",
                           hint=f"a branch or tag can be moved to other code; find the SHA with "
                                f"`git ls-remote {home()} refs/tags/v{__version__}`")
        pinned = (repository(home()), action_ref)
    else:
        known = source_commit()
        if known is None:
            raise ArlError(
                "this arl-bot does not know the commit it was built from, so the workflow was not written "
                "(it would have to run arl-bot's action unpinned)",
                hint=f"pick the commit of {home()} you trust (a release: `git ls-remote {home()} "
                     f"refs/tags/v{__version__}`) and run `arl-bot init --workflow-only --action-ref <SHA>`")
        pinned = known
    text = template("workflow.yml")
    return text.replace(ACTION_MARK, f"{pinned[0]}@{pinned[1]}").replace(VERSION_MARK, f"v{__version__}")


def loop_name(root: Path) -> str:
    """A loop name from the repository's folder (`My_Project` -> `my-project`), else `research`.

    Not `main`: that is the base branch's usual name, and `autoresearch/main` beside `main` misleads.
    """
    name = re.sub(r"[^a-z0-9]+", "-", root.name.lower()).strip("-")[:40].strip("-")
    return name if name and LOOP_NAME.match(name) and name != "main" else "research"


def scaffold(root: Path) -> tuple[dict[str, str], dict[Path, str], list[str]]:
    """The template's values from what the repository has; placeholder files; notes on what is a placeholder.

    The editable files are the first of EDITABLE_GUESSES that exists. An evaluation that is not there
    gets a placeholder eval/run.py that fails saying what to write, never a config pointing at nothing.
    """
    values: dict[str, str] = {}
    extra: dict[Path, str] = {}
    notes: list[str] = []
    found = next((glob for glob, path in EDITABLE_GUESSES if (root / path).exists()), None)
    if found is not None:
        values["editable"] = f'"{found}"'
        values["editable_note"] = "globs the agent may change (everything else is off limits)"
    else:
        values["editable"] = '"train.py"'
        values["editable_note"] = "PLACEHOLDER: no train.py here; list the files the agent may change"
        notes.append("editable: no train.py, model.py, main.py or src/ here; set `editable:` to the files "
                     "the agent may change")
    values["evaluate_note"] = "prints a line `val_loss: <number>`"
    if not (root / EVAL_SCRIPT).exists():
        extra[root / EVAL_SCRIPT] = EVAL_PLACEHOLDER
        values["evaluate_note"] = f"PLACEHOLDER: {EVAL_SCRIPT} fails until you write it"
        notes.append(f"{EVAL_SCRIPT}: a placeholder that fails (see `arl-bot eval`) until you replace it with "
                     "the evaluation that scores your project")
    return values, extra, notes


def init(root: Path, loop: str | None = None, task: str | None = None, *, action_ref: str | None = None,
         workflow_only: bool = False, notes: list[str] | None = None) -> tuple[list[Path], str]:
    """Write the starter files into root (a built-in task's lab when task is set); refuse to overwrite any.

    Returns the paths written and, when the workflow could not be pinned, why it was left out; notes
    (when given) receives what was left as a placeholder for the user to fill in.
    """
    loop = loop or task or loop_name(root)
    if not LOOP_NAME.match(loop):
        raise ArlError(f"loop name {loop!r} must be lowercase letters, digits and '-'")
    files: dict[Path, str] = {}
    if not workflow_only and task is None:
        values, extra, said = scaffold(root)
        files[root / CONFIG_FILE] = template("autoresearch.yml").format(loop=loop, **values)
        files[root / "AGENT.md"] = template("AGENT.md").format(loop=loop)
        files.update(extra)
        if notes is not None:
            notes.extend(said)
    skipped = ""
    try:
        files[root / WORKFLOW_FILE] = workflow(action_ref)
    except ArlError as exc:
        if workflow_only or action_ref is not None:
            raise
        skipped = str(exc)
    if task is not None and not workflow_only:
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
    if workflow_only:
        return written, skipped
    gitignore = root / ".gitignore"
    current = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    missing = [line for line in GITIGNORE_LINES if line not in current.splitlines()]
    if missing:
        prefix = "" if not current or current.endswith("\n") else "\n"
        gitignore.write_text(current + prefix + "\n".join(missing) + "\n", encoding="utf-8")
        written.append(gitignore)
    return written, skipped
