"""A hostile agent's words and file names reach GitHub and the terminal as text, and protected globs hold.

The agent runs under real bubblewrap, describes its experiments with Markdown, mentions, links, HTML and
terminal escape sequences, and writes `eval/injected\\nplugin.py` and ``model/``weird.py``. Everything it
said is then shown where people read it: the pull-request body (through the loopback GitHub stand-in and
the real PyGithub client), the failure comment, the job summary, `arl-bot run` and `arl-bot results`.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import textwrap
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from arl_bot.github import feedback
from arl_bot.github.client import GitHub
from arl_bot.github.outputs import failure_summary
from arl_bot.prbody import END_MARKER, BodyContext, render
from arl_bot.progress import CLEAR
from arl_bot.record import Note, Record
from arl_bot.report import build_report
from arl_bot.sanitize import ZWSP, terminal_text
from arl_bot.store import RecordStore
from markdown_it import MarkdownIt

from tests.action_world import World
from tests.github_standin import GitHubStandIn
from tests.labs import PY, Lab, make_lab
from tests.sample_records import small_record

DESCRIPTION = ("@octo-org/everyone ![x](http://evil/x.png) # heading [link](http://evil) </details> "
               "\x1b]0;pwned\x07 \x1b[2J")
SHOWN = terminal_text(DESCRIPTION).strip()  # what a person should read: the same words, minus the escapes
INJECTED = "eval/injected\nplugin.py"
WEIRD = "model/``weird.py"

AGENT = textwrap.dedent(f"""\
    import os
    from pathlib import Path
    n = int(os.environ["AUTORESEARCH_EXPERIMENT"])
    if n == 1:  # the first experiment smuggles a file into the protected evaluation folder
        Path({INJECTED!r}).write_text("print('pwned')\\n")
    Path({WEIRD!r}).write_text("x = 1\\n")
    Path("model/value.txt").write_text(f"{{10 - n}}\\n")
    Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text({DESCRIPTION!r})
    print({DESCRIPTION!r})
    """)
CONFIG = textwrap.dedent(f"""\
    version: 1
    loops:
      demo:
        editable: ["model/**"]
        protected: ["eval/**", "agent.py"]
        metric: {{name: score, goal: minimize}}
        evaluate:
          command: "{PY} eval/run.py"
          timeout: 30
          seeds: [1]
        agent: {{kind: command, command: "{PY} agent.py", timeout: 30}}
        sandbox: {{kind: bubblewrap}}
        budget: {{experiments: 2}}
    """)

# GFM as GitHub draws it (tables, strikethrough, raw HTML passed through); mentions, references and
# bare URLs are linked by GitHub afterwards, in the text that is left: `linkable` looks for those.
GFM = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def linkable(rendered: str) -> list[str]:
    """What GitHub would still turn into a mention, an issue link or a URL in rendered HTML's text."""
    # Code is never linked, and links the bot made itself are checked where they are made.
    prose = re.sub(r"<pre>.*?</pre>|<code>.*?</code>|<a [^>]*>.*?</a>", " ", rendered, flags=re.DOTALL)
    text = html.unescape(re.sub(r"<[^>]+>", " ", prose))
    return re.findall(r"(?<![\w`])@[A-Za-z0-9]|(?<![\w&])#[0-9]|https?://|\bwww\.", text)


def hostile_lab(tmp_path: Path, *, remote: bool = False) -> Lab:
    """The value lab, with the hostile agent (protected) and bubblewrap around every phase."""
    return make_lab(tmp_path, ["0"], config_text=CONFIG, files={"agent.py": AGENT}, remote=remote)


def arl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """`arl-bot` in the lab, as a person runs it from a terminal (colour and all)."""
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("CI", None)
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run([sys.executable, "-m", "arl_bot.cli", *args], cwd=lab.root, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, subprocess.CompletedProcess[str], Record]]:
    """One dry run of the hostile loop (baseline and two experiments), its terminal output and record."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))  # the per-test git identity fixture has not run yet at module scope
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for key, value in (("GIT_AUTHOR_NAME", "t"), ("GIT_AUTHOR_EMAIL", "t@example.com"),
                           ("GIT_COMMITTER_NAME", "t"), ("GIT_COMMITTER_EMAIL", "t@example.com")):
            mp.setenv(key, value)
        lab = hostile_lab(tmp_path_factory.mktemp("hostile"))
        run = arl(lab, "run", "--dry-run", "--progress", "plain")
        assert run.returncode == 0, run.stderr
        record = RecordStore(lab.repo, "demo").load()
        assert record is not None
        yield lab, run, record


def test_the_agent_really_ran_in_bubblewrap_and_said_what_it_said(ran: tuple[Lab, subprocess.CompletedProcess[str],
                                                                                Record]) -> None:
    _, run, record = ran
    assert "sandbox bubblewrap" in run.stderr
    assert record.attempts[0].status == "baseline" and len(record.attempts) == 3
    assert record.attempts[1].description == DESCRIPTION  # the record keeps the truth; only views escape it


def test_the_protected_glob_catches_a_name_with_a_newline(ran: tuple[Lab, subprocess.CompletedProcess[str],
                                                                     Record]) -> None:
    _, _, record = ran
    first = record.attempts[1]
    assert first.status == "invalid"
    assert first.reason == 'changed protected paths: "eval/injected\\nplugin.py"'  # named as git quotes it
    assert record.attempts[2].status in ("keep", "discard")  # ``model/``weird.py`` alone is fine: editable


def test_the_terminal_gets_no_escape_sequences(ran: tuple[Lab, subprocess.CompletedProcess[str], Record]) -> None:
    lab, run, _ = ran
    outputs = {"run": run.stdout + run.stderr}
    for fmt in ("table", "tsv", "karpathy", "json"):
        shown = arl(lab, "results", "--loop", "demo", "--format", fmt)
        assert shown.returncode == 0, shown.stderr
        outputs[f"results {fmt}"] = shown.stdout + shown.stderr
    for where, text in outputs.items():
        assert not TERMINAL_CONTROLS.findall(text), (where, TERMINAL_CONTROLS.findall(text))
    # ...and still shows the words, the escapes stripped
    assert " ".join(SHOWN.split()) in outputs["run"] and " ".join(SHOWN.split())[:60] in outputs["results table"]
    assert "pull-request body (dry run: not posted)" in run.stdout


def test_the_status_line_draws_only_its_own_escapes(tmp_path: Path) -> None:
    lab = hostile_lab(tmp_path)
    run = arl(lab, "run", "--dry-run", "--progress", "status")
    assert run.returncode == 0, run.stderr
    # The status line redraws itself with CLEAR (carriage return, erase line), and with nothing else; text
    # mode reads its carriage return as a newline.
    own = run.stderr.replace(CLEAR.lstrip("\r"), "")
    assert not TERMINAL_CONTROLS.findall(own + run.stdout), TERMINAL_CONTROLS.findall(own)
    assert "@octo-org/everyone ![x](http://evil/x.png)" in own


def rendered_body(body: str) -> str:
    rendered = GFM.render(body)
    # The bot's own structure: its headings, its one details block; nothing the agent wrote adds to it.
    headings = re.findall(r"<h(\d)>(.*?)</h\1>", rendered)
    assert [text for _, text in headings if not text.startswith(("🔬", "Progress", "Latest", "Kept",
                                                                 "Measurement", "Noise", "Holdout"))] == []
    assert rendered.count("<details>") == rendered.count("</details>") == 1
    assert "<img" not in rendered and "<h1" not in rendered
    return rendered


def test_the_pr_body_shows_the_description_as_text(ran: tuple[Lab, subprocess.CompletedProcess[str],
                                                              Record]) -> None:
    _, run, record = ran
    body = render(record, BodyContext(loop="demo", goal="minimize", metric="score"))
    rendered = rendered_body(body)
    assert "<a " not in rendered and not linkable(rendered)
    assert body.count(END_MARKER) == 1 and "<!--" not in body.split("\n", 1)[1].replace(END_MARKER, "")
    cells = [html.unescape(c).replace(ZWSP, "") for c in re.findall(r"<td>(.*?)</td>", rendered)]
    words = " ".join(SHOWN.split())
    assert [c for c in cells if c.startswith(words[:70]) and words.startswith(c.rstrip("…"))]  # as text, cut
    assert terminal_text(body) == body  # the body itself carries no escape sequence
    assert body.strip() in run.stdout  # the dry run printed exactly this body


def test_the_report_escapes_agent_text(ran: tuple[Lab, subprocess.CompletedProcess[str], Record]) -> None:
    pytest.importorskip("plotly")  # the report extra; CI installs it
    _, _, record = ran
    page = build_report(record)
    assert page.count("<details>") == page.count("</details>")  # the agent's `</details>` closes nothing
    assert "&lt;/details&gt;" in page and "![x](http://evil/x.png)" in page  # as text, inside table cells


# -- GitHub: the Action against the stand-in --------------------------------------------------------------
@pytest.fixture
def gh_world(tmp_path: Path) -> Iterator[World]:
    lab = hostile_lab(tmp_path, remote=True)
    with GitHubStandIn(git_dir=lab.remote) as github:
        github.add_user("alice", role="write")
        yield World(tmp_path, lab, github)


def test_the_research_pr_shows_agent_text_as_text_and_keeps_a_persons_notes(gh_world: World) -> None:
    w = gh_world
    first = w.dispatch(experiments=2)
    assert first.code == 0, first.stderr
    body = w.pr_body()
    rendered = rendered_body(body)
    assert not linkable(rendered)
    links = re.findall(r'<a href="([^"]*)"', rendered)
    assert all(link.startswith("https://github.example/") for link in links), links  # only the bot's own links
    # The summary of the run (same cells) holds no escape either.
    assert not TERMINAL_CONTROLS.findall(first.summary) and not linkable(GFM.render(first.summary))

    # A reviewer writes above and below the bot's part, through the real client, as the web page would.
    person = GitHub(w.github.full_name, w.github.token, api_url=w.github.url)
    person.set_pull_body(1, f"Reviewer: this loop is for the Q3 paper.\n\n{body}\n## Notes\nKeep seeds fixed.\n")
    again = w.dispatch(experiments=1)
    assert again.code == 0, again.stderr
    after = w.pr_body()
    assert after.startswith("Reviewer: this loop is for the Q3 paper.\n\n<!-- arl-bot:pr-body loop=demo -->")
    assert after.endswith(f"{END_MARKER}\n\n## Notes\nKeep seeds fixed.\n")
    assert "| 3 |" in after and "| 3 |" not in body  # the bot's part did move on
    assert after.count(END_MARKER) == 1


def one_code_block(markdown: str, error: str) -> str:
    """The rendered comment; the error must sit whole in one code block and nothing else may render."""
    rendered = GFM.render(markdown)
    blocks = [html.unescape(b) for b in re.findall(r"<pre><code[^>]*>(.*?)</code></pre>", rendered, re.DOTALL)]
    assert [b for b in blocks if b == terminal_text(error) + "\n"], (blocks, rendered)
    outside = re.sub(r"<pre>.*?</pre>", "", rendered, flags=re.DOTALL)
    assert "<img" not in outside and "<h1" not in outside and "<h2" not in outside and not linkable(outside)
    return rendered


ERRORS = [
    f"loop demo: git refused {INJECTED}\n```\n# heading @octo-org/everyone\n![x](http://evil/x.png)\n</details>",
    "a ```` fence of four and ``` three, then \x1b]0;pwned\x07 and \x1b[2J",
    f"branch autoresearch/{WEIRD}: " + DESCRIPTION,
]


@pytest.mark.parametrize("error", ERRORS)
def test_a_failure_comment_keeps_the_error_in_one_code_block(error: str) -> None:
    comment = feedback.failure(error, "/autoresearch continue", "https://github.example/o/r/actions/runs/1")
    rendered = one_code_block(comment, error)
    assert rendered.count("<pre>") == 2  # the error and the retry command, nothing else
    assert "\x1b" not in comment


@pytest.mark.parametrize("error", ERRORS)
def test_the_job_summary_keeps_the_error_in_one_code_block(error: str) -> None:
    summary = failure_summary("demo", error)
    one_code_block(summary, error)
    assert GFM.render(summary).count("<pre>") == 1


def test_a_failed_baseline_quoting_the_evaluation_is_one_code_block_on_github(tmp_path: Path) -> None:
    # The evaluation prints JSON whose metric is hostile text: the error quotes it, the Action comments it.
    hostile = "```\\n# pwned @octo-org/everyone ![x](http://evil/x.png)"
    config = CONFIG.replace("seeds: [1]", "seeds: [1]\n      parse: {json: score}")
    lab = make_lab(tmp_path, ["0"], config_text=config, remote=True, files={
        "agent.py": AGENT, "eval/run.py": f"import json\nprint(json.dumps({{'score': {hostile!r}}}))\n"})
    with GitHubStandIn(git_dir=lab.remote) as github:
        github.add_user("alice", role="write")
        w = World(tmp_path, lab, github)
        result = w.dispatch(experiments=1)
        assert result.code != 0
        comments = github.replies(1)
        assert comments, result.stderr
        failure = comments[-1]
        rendered = GFM.render(failure)
        outside = re.sub(r"<pre>.*?</pre>", "", rendered, flags=re.DOTALL)
        assert "is not a number" in "".join(re.findall(r"<pre>.*?</pre>", rendered, re.DOTALL))
        assert "<h1" not in outside and "<img" not in outside and not linkable(outside)
        summary = GFM.render(result.summary)
        assert "<h1" not in re.sub(r"<pre>.*?</pre>", "", summary, flags=re.DOTALL)


# -- replies to commands -------------------------------------------------------------------------------
def test_a_branch_name_with_backticks_stays_in_its_code_span(gh_world: World) -> None:
    w = gh_world
    branch = "feature/``x`@octo-org/everyone|<b>"
    number = w.github.add_pull(branch, title="not research")
    result, _ = w.comment(number, "/autoresearch status")
    assert result.code == 0, result.stderr
    reply = w.github.replies(number)[-1]
    rendered = GFM.render(reply)
    codes = [html.unescape(c) for c in re.findall(r"<code>(.*?)</code>", rendered)]
    assert branch in codes, (codes, reply)
    outside = re.sub(r"<code>.*?</code>|<pre>.*?</pre>", "", rendered, flags=re.DOTALL)
    assert "<b>" not in outside and not linkable(outside)


def test_an_unknown_command_is_echoed_back_as_text(gh_world: World) -> None:
    w = gh_world
    number = w.github.add_pull("autoresearch/demo", title="research")
    line = "/autoresearch deploy ```` @octo-org/everyone ![x](http://evil/x.png) </details> \x1b[2J"
    result, _ = w.comment(number, line)
    assert result.code == 0, result.stderr
    reply = w.github.replies(number)[-1]
    rendered = GFM.render(reply)
    blocks = [html.unescape(b) for b in re.findall(r"<pre><code[^>]*>(.*?)</code></pre>", rendered, re.DOTALL)]
    assert blocks and blocks[0] == terminal_text(line) + "\n"
    outside = re.sub(r"<pre>.*?</pre>", "", rendered, flags=re.DOTALL)
    assert "<img" not in outside and "</details>" not in outside.replace("</details>", "", outside.count(
        "<details>")) and not linkable(outside)
    assert not [c for c in reply if unicodedata.category(c) == "Cc" and c != "\n"]


def test_the_status_reply_shows_the_stop_reason_as_text() -> None:
    # The reason a run stopped can quote an agent (a crash streak names its last reason): one table cell, as text.
    record = small_record()
    record.notes.append(Note(kind="run_start", at="2025-01-02T00:00:00.000000Z", data={"run_id": "r"}))
    record.notes.append(Note(kind="run_end", at="2025-01-02T00:01:00.000000Z",
                             data={"run_id": "r", "reason": f"crashes: {DESCRIPTION} | x\n# y"}))
    reply = feedback.status("demo", record)
    rendered = GFM.render(reply)
    state = re.findall(r"<td>state</td>\s*<td>(.*?)</td>", rendered, re.DOTALL)
    assert state and html.unescape(state[0]).replace(ZWSP, "") == " ".join(
        terminal_text(f"stopped: crashes: {DESCRIPTION} | x\n# y").split())
    assert "<img" not in rendered and "<a " not in rendered and not linkable(rendered)
    assert [h for h in re.findall(r"<h\d>(.*?)</h\d>", rendered)] == ["<code>demo</code> status"]
