"""The command agent: any program that edits the tree (a script, aider, a proposer) is an agent."""

from __future__ import annotations

from pydantic import Field

from .. import policy, safefile
from ..config import AgentConfig, PassEnv
from ..process import ProcessResult
from .base import Agent, AgentResult, AgentTask

DESCRIPTION_BYTES = 64_000  # only the first line is used; the rest of a bigger file is not read
CAUSE_LINES, CAUSE_CHARS = 3, 300  # of the agent's stderr, in the error people read on the console
NOT_FOUND = 127  # the shell's status for a command it could not find


class CommandOptions(AgentConfig):
    """`agent:` keys of the command kind."""

    command: str = Field(min_length=1)  # run with /bin/sh -c in the worktree
    pass_env: PassEnv = Field(default_factory=list)  # variables of the bot's environment it gets (e.g. an API key)


class CommandAgent(Agent):
    """Runs `agent.command` in the working tree; the prompt's path is in AUTORESEARCH_PROMPT_FILE.

    The command may write a one-line description of what it tried to the file named by
    AUTORESEARCH_DESCRIPTION_FILE; otherwise its last line of output is the description.
    """

    kind = "command"
    Options = CommandOptions
    config: CommandOptions

    def propose(self, task: AgentTask) -> AgentResult:
        """Run the command once."""
        description_file = task.prompt_file.with_name("description.txt")
        description_file.unlink(missing_ok=True)
        env = {
            **task.env,
            **policy.passed_env(self.config.pass_env),  # e.g. the API key of a CLI agent like aider
            "AUTORESEARCH_PROMPT_FILE": str(task.prompt_file),
            "AUTORESEARCH_DESCRIPTION_FILE": str(description_file),
            "AUTORESEARCH_EXPERIMENT": str(task.experiment),
            "AUTORESEARCH_MODE": task.mode,
            "AUTORESEARCH_PARENT": task.parent,
        }
        run = self.sandbox.run(
            ["/bin/sh", "-c", self.config.command], cwd=task.tree,
            policy=policy.agent_policy(task.tree, task.prompt_file.parent, env),
            timeout=task.timeout,
        )
        description, refused = "", ""
        try:  # the agent could have put a link or a FIFO there: read it as an untrusted file
            description = safefile.text_untrusted(description_file.parent, description_file.name, DESCRIPTION_BYTES,
                                                  over="head").strip()
        except safefile.MissingFileError:
            pass
        except safefile.UntrustedFileError as exc:
            refused = f"AUTORESEARCH_DESCRIPTION_FILE refused: {exc.message}"
        if not description:
            lines = [line.strip() for line in run.stdout.splitlines() if line.strip()]
            description = lines[-1] if lines else ""
        description = description.splitlines()[0][:200] if description else f"experiment {task.experiment}"
        error = refused
        if run.timed_out:
            error = f"agent timed out after {task.timeout:g}s"
        elif run.returncode != 0:
            error = f"agent exited with status {run.returncode}{_cause(run)}"
        return AgentResult(description=description, log=run.tail(), error=error)


def _cause(run: ProcessResult) -> str:
    """Why the command failed, in its own words: the first lines of its stderr (the last, if the head was cut)."""
    lines = [line.strip() for line in run.stderr.splitlines() if line.strip()]
    lines = lines[-CAUSE_LINES:] if run.stderr_dropped else lines[:CAUSE_LINES]
    said = " / ".join(lines)
    said = f": {said[:CAUSE_CHARS]}{'…' if len(said) > CAUSE_CHARS else ''}" if said else ""
    if run.returncode == NOT_FOUND:
        return (f" (command not found: check agent.command, and that its program is installed and on PATH "
                f"where the agent runs){said}")
    return said
