"""Real git repositories for tests: a lab is a small project with a config, an evaluation and an agent."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from arl_bot import config
from arl_bot.git import Git

PY = sys.executable

# An evaluation that reads the number in model/value.txt as the metric: tests steer keeps and discards
# by what their agent writes there.
EVAL_VALUE = textwrap.dedent("""\
    import sys
    from pathlib import Path
    text = Path("model/value.txt").read_text().strip()
    if text == "crash":
        sys.exit(3)
    if text == "silent":
        sys.exit(0)
    print("noise: 1.0")
    print(f"score: {float(text)}")
    """)

# An agent that writes the next value from a script of values, one per experiment.
AGENT_SCRIPT = textwrap.dedent("""\
    import os, sys
    from pathlib import Path
    values = Path(sys.argv[1]).read_text().split()
    n = int(os.environ["AUTORESEARCH_EXPERIMENT"])
    value = values[(n - 1) % len(values)]
    Path("model/value.txt").write_text(value + "\\n")
    Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text(f"set value to {value}\\n")
    """)


def git(cwd: Path, *args: str) -> str:
    """Run git in cwd with a fixed identity and return stdout."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@dataclass
class Lab:
    """A repository under test."""

    root: Path
    remote: Path | None = None

    @property
    def repo(self) -> Git:
        """The git adapter on the lab."""
        return Git(self.root)

    def config(self) -> config.Config:
        """The lab's parsed config."""
        return config.load(self.root / config.CONFIG_FILE)

    def loop(self, name: str | None = None) -> config.Loop:
        """One loop of the lab's config."""
        return self.config().loop(name)

    def git(self, *args: str) -> str:
        """git in the lab."""
        return git(self.root, *args)

    def write(self, path: str, text: str) -> None:
        """Write a file in the lab's checkout (not committed)."""
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def use_agent(self, script: str, code: str) -> None:
        """Commit an agent script and make it the loop's (protected) command agent."""
        self.write(script, code)
        self.write(".autoresearch.yml", value_config(agent=f'{{kind: command, command: "{PY} {script}"}}')
                   .replace('"agent.py"', f'"agent.py", "{script}"'))
        self.commit_all(f"agent {script}")

    def commit_all(self, message: str = "change") -> None:
        """Commit everything in the checkout."""
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)


def value_config(values_file: str = "values.txt", *, loop: str = "demo", budget: str = "{experiments: 5}",
                 goal: str = "minimize", extra: str = "", agent: str | None = None,
                 evaluate_extra: str = "") -> str:
    """A config for the value lab: the agent writes values from values_file, the evaluation reads them."""
    agent = agent or f'{{kind: command, command: "{PY} agent.py {values_file}", timeout: 30}}'
    return textwrap.dedent(f"""\
        version: 1
        loops:
          {loop}:
            editable: ["model/**"]
            protected: ["eval/**", "agent.py", "{values_file}"]
            metric: {{name: score, goal: {goal}}}
            evaluate:
              command: "{PY} eval/run.py --seed {{seed}}"
              timeout: 20
              seeds: [1]
        {textwrap.indent(evaluate_extra, ' ' * 6)}
            agent: {agent}
            sandbox: none
            budget: {budget}
        {textwrap.indent(extra, ' ' * 4)}
        """)


def make_lab(tmp_path: Path, values: list[str] | str, *, start: str = "10", config_text: str | None = None,
             remote: bool = False, files: dict[str, str] | None = None) -> Lab:
    """A committed repository whose agent writes `values` in turn and whose metric is that value."""
    root = tmp_path / "lab"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    lab = Lab(root)
    lab.write("model/value.txt", f"{start}\n")
    lab.write("eval/run.py", EVAL_VALUE)
    lab.write("agent.py", AGENT_SCRIPT)
    lab.write("values.txt", values if isinstance(values, str) else "\n".join(values) + "\n")
    lab.write("AGENT.md", "Lower the score.\n")
    lab.write(".autoresearch.yml", config_text or value_config())
    for path, text in (files or {}).items():
        lab.write(path, text)
    lab.commit_all("lab")
    if remote:
        bare = tmp_path / "remote.git"
        git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
        lab.git("remote", "add", "origin", str(bare))
        lab.git("push", "--quiet", "origin", "main")
        lab.remote = bare
    return lab


def running(pid: int) -> bool:
    """Whether pid is a live process; a zombie is not (PID 1 in some containers never reaps orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


# An agent that takes the next ticket (atomically, across workers, processes and clones) and does that
# ticket's job: `x=v` writes model/x.txt; `x=v@sN` first waits until ticket N's agent started; `x=v@kN` until ticket
# N's change is kept on the research branch; `sleep` sleeps (until the run is stopped or killed).
_TICKET_AGENT = textwrap.dedent("""\
    import os, subprocess, sys, time
    from pathlib import Path
    shared = Path({shared!r})
    jobs = (shared / "jobs.txt").read_text().split()
    n = 0
    while True:
        n += 1
        try:
            os.close(os.open(shared / f"ticket-{{n}}", os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            continue
    job = jobs[(n - 1) % len(jobs)]
    (shared / f"pid-{{n}}").write_text(str(os.getpid()))
    (shared / f"started-{{n}}").write_text(os.environ["AUTORESEARCH_EXPERIMENT"])
    if job == "sleep":
        time.sleep(300)
    job, _, after = job.partition("@")
    while after[:1] == "s" and not (shared / f"started-{{after[1:]}}").exists():
        time.sleep(0.02)
    while after[:1] == "k" and f"ticket {{after[1:]}}:" not in subprocess.run(
            ["git", "-C", {root!r}, "log", "--format=%s", "autoresearch/demo"], capture_output=True,
            text=True).stdout:
        time.sleep(0.02)
    name, value = job.split("=")
    Path(f"model/{{name}}.txt").write_text(value + "\\n")
    Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text(f"ticket {{n}}: set {{name}} to {{value}}\\n")
    """)


def ticket_agent(shared: Path, root: Path | None = None) -> str:
    """The ticket agent's script: tickets and jobs in shared; root, the clone `@kN` jobs look at."""
    return _TICKET_AGENT.format(shared=str(shared), root=str(root or shared))
