"""One reply tells the whole story of a command's run: queued (on which runner labels), started, finished.

The gate posts it when it hands a command to the research job; the research job, which gets its id through the
gate's outputs, edits it when it starts and when it ends. A comment on a loop whose runner is offline then says
what it waits for instead of sitting at 👀 for the 24 hours GitHub queues a job. A loop with `runners: N` has N
research jobs: the first edits the gate's reply, each other one posts a reply of its own and edits only that, since
GitHub has no compare-and-swap on a comment and two jobs editing one reply would each write over the other's lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ..sanitize import code_span, markdown_text
from ..views import fmt
from .client import GitHub, GitHubError
from .feedback import MARKER, quote

RUN_MARKER = "<!-- arl-bot:run-reply -->"  # the research job edits only a comment that carries it


def queued(line: str, loop: str, runner: Sequence[str], jobs: int = 1) -> str:
    """The gate's reply: what runs, and the labels of the runner it waits for; jobs: the loop's `runners:`."""
    labels = ", ".join(code_span(label) for label in runner)
    if jobs > 1:
        return (f"{MARKER}\n{RUN_MARKER}\n{quote(line)}\n⏳ Queued for `{loop}`: {jobs} research jobs "
                f"(`runners: {jobs}`) wait for runners with the labels {labels}. If no such runner is online, GitHub "
                "keeps them queued for up to 24 hours; this comment changes when the first starts, and each of the "
                "others posts a reply of its own.")
    return (f"{MARKER}\n{RUN_MARKER}\n{quote(line)}\n⏳ Queued for `{loop}`: the research job waits for a "
            f"runner with the labels {labels}. If no such runner is online, GitHub keeps it queued for up to 24 "
            "hours; this comment changes when it starts.")


def joined(loop: str, shard: int, jobs: int, reply_url: str) -> str:
    """The reply of a loop's second and later `runners:` jobs, which each tell their own story in it."""
    return (f"{MARKER}\n{RUN_MARKER}\n🧵 Research job {shard + 1} of {jobs} for `{loop}`, for the command "
            f"[above]({reply_url}).")


def started(runner_name: str, run_url: str, at: datetime | None = None) -> str:
    """The line the research job adds when it starts."""
    log = f" ([log]({run_url}))" if run_url else ""
    where = f" on runner {code_span(runner_name)}" if runner_name else ""
    return f"🚀 Started{where} at {_clock(at)}{log}."


def finished(*, tried: int, kept: int, baseline: float | None, best: float | None, metric: str, reason: str,
             pr_url: str = "", at: datetime | None = None) -> str:
    """The line the research job adds when the run ends, with its figures."""
    pr = f" See the [pull request]({pr_url})." if pr_url else ""
    return (f"✅ Finished at {_clock(at)}: {tried} experiments, {kept} kept; {metric} best {fmt(best)} "
            f"(baseline {fmt(baseline)}); stopped: {markdown_text(reason)}.{pr}")


def failed(message: str, at: datetime | None = None) -> str:
    """The line the research job adds when the run fails."""
    return f"❌ Failed at {_clock(at)}:\n\n{quote(message)}"


class Tracker:
    """The research job's side: add a line to the gate's reply at the start and at the end; failures only warn."""

    def __init__(self, github: GitHub, comment_id: int, body: str | None = None) -> None:
        """body: the reply's text when this job posted it itself (None: read it before the first edit)."""
        self.github = github
        self.comment_id = comment_id
        self.body = body
        self.warnings: list[str] = []

    def add(self, line: str) -> None:
        """Append line to the reply (read once, then kept here: one request per edit)."""
        if not self.comment_id:
            return
        try:
            if self.body is None:
                body = self.github.get_comment(self.comment_id).body
                if RUN_MARKER not in body:  # not the gate's reply: never edit someone else's words
                    self.warnings.append(f"comment {self.comment_id} is not arl-bot's run reply; not edited")
                    self.comment_id = 0
                    return
                self.body = body
            self.body = f"{self.body}\n\n{line}"
            self.github.edit_comment(self.comment_id, self.body)
        except GitHubError as exc:
            self.warnings.append(f"could not update the reply {self.comment_id}: {exc.message}")


def _clock(at: datetime | None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
