"""What the bot says on a pull request: reactions, replies that quote the command, status, failures."""

from __future__ import annotations

from ..commands import PREFIX
from ..record import Record
from ..sanitize import code_block, code_span, table_cell
from ..views import COMMANDS, change, fmt
from .client import GitHub, GitHubError

MARKER = "<!-- arl-bot:reply -->"  # every reply carries it, so the bot never takes its own words as a command
EYES, ROCKET, CONFUSED = "eyes", "rocket", "confused"

HELP = f"""{MARKER}
### arl-bot commands

Post one command per comment, on a line of its own, on a research pull request (`autoresearch/<loop>`).

{COMMANDS}

People with the `admin`, `maintain` or `write` role on this repository may run them (the config's
`github.allowed_roles` can change that)."""

NOT_A_PULL = "commands work on research pull requests only, and this is an issue"
EDITED = "edited comments are not run; post the command as a new comment"
FORK = ("this pull request's branch lives in a fork; the bot only runs loops on research branches of this "
        "repository")
NOT_RESEARCH = ("this is not a research pull request (its branch is {branch}); commands work on pull requests "
                "from `autoresearch/<loop>` branches opened by the bot")
UNKNOWN_LOOP = "branch {branch} names loop {loop}, which is not in {config}"
QUOTED = 300  # characters of a command line quoted back
NOT_ALLOWED = ("@{login} has the `{role}` role on this repository; running commands needs one of: {allowed}. "
               "A maintainer can post the command instead")


def quote(line: str) -> str:
    """A command line quoted back safely: in a code block, so no Markdown, mention or HTML takes effect."""
    return code_block(line[:QUOTED])


def not_research(branch: str) -> str:
    """Why a pull request from another branch takes no commands; anyone can name a branch, so it is quoted."""
    return NOT_RESEARCH.format(branch=code_span(branch))


def unknown_loop(branch: str, loop: str, config: object) -> str:
    """Why a research branch whose loop is not configured takes no commands."""
    return UNKNOWN_LOOP.format(branch=code_span(branch), loop=code_span(loop), config=code_span(str(config)))


def refused_marker(login: str) -> str:
    """The hidden line that marks the bot's refusal of login (logins are letters, digits and '-')."""
    return f"\n<!-- arl-bot:refused {login.lower()} -->"


def refusal(line: str, reason: str, *, with_help: bool = False) -> str:
    """A reply to a command the bot will not run."""
    text = f"{MARKER}\n{quote(line)}\n❌ Not run: {reason}."
    if with_help:
        text += f"\n\n<details><summary>Commands</summary>\n\n{COMMANDS}\n\n</details>"
    return text


def done(line: str, what: str) -> str:
    """A reply confirming a command the gate carried out itself."""
    return f"{MARKER}\n{quote(line)}\n✅ {what}"


def status(loop: str, record: Record | None, pr_url: str = "") -> str:
    """Where a loop stands, from its record."""
    if record is None:
        return f"{MARKER}\n{code_span(loop)} has not run yet. Start it with `{PREFIX} continue`."
    base = record.baseline.metric if record.baseline else None
    best = record.best.metric if record.best else None
    counts = record.counts()
    tried = len(record.attempts) - counts["baseline"]
    state = "⏸️ stopped by a command (the schedule skips it)" if record.paused else (
        f"stopped: {record.stop_reason}" if record.stop_reason else "running")
    lines = [MARKER, f"### {code_span(loop)} status", "", "| | |", "| --- | --- |",
             f"| state | {table_cell(state, 300)} |",
             f"| baseline | {fmt(base)} |",
             f"| best | {fmt(best)} |",
             f"| change | {change(base, best, record.meta.goal)} |",
             f"| experiments | {tried} tried, {counts['keep']} kept |",
             f"| cost | ${record.total_cost:.2f} |"]
    if record.redirects:
        lines.append(f"| redirects | {len(record.redirects)} noted |")
    return "\n".join(lines)


def failure(what: str, retry: str, run_url: str = "") -> str:
    """A reply saying what failed and the exact command to retry.

    The error can quote anything (an agent's file name, git's words), so it goes in a code block that
    nothing in it can close.
    """
    run = f" ([log]({run_url}))" if run_url else ""
    return (f"{MARKER}\n❌ arl-bot failed{run}:\n\n{code_block(what)}\n\nEvery experiment recorded before the "
            f"failure is safe on the research branch and its record. To retry, comment:\n\n{code_block(retry)}")


class Feedback:
    """Reactions and replies on one pull request or issue, about one comment."""

    def __init__(self, github: GitHub, number: int, comment_id: int | None = None) -> None:
        self.github = github
        self.number = number
        self.comment_id = comment_id
        self.warnings: list[str] = []

    def react(self, content: str) -> None:
        """React to the comment; a failed reaction is a warning, not a reason to stop."""
        if self.comment_id is None:
            return
        try:
            self.github.react(self.comment_id, content)
        except GitHubError as exc:
            self.warnings.append(str(exc))

    def reply(self, text: str) -> None:
        """Comment on the pull request or issue."""
        self.github.comment(self.number, text)
