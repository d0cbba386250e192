"""The research job's job summary and its start: hostile error text stays in its block, host limits are checked."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest
from arl_bot import config
from arl_bot.github.research import summary_table
from arl_bot.loop import RunSummary

from tests.action_world import world
from tests.labs import git, value_config
from tests.sample_records import small_record
from tests.test_security_text import GFM, linkable
from tests.webhooks import payload, run_action

HOSTILE = "\n```\n| x | y |\n# heading @octo-org/everyone"


def test_a_failure_quoting_a_fence_line_and_a_pipe_stays_in_one_code_block_of_the_job_summary(tmp_path: Path) -> None:
    # git's words quote what they were given, here the remote's URL: a fence line, a table row, a heading.
    with world(tmp_path) as w:
        gone = f"{tmp_path}/gone{HOSTILE}"
        git(w.lab.root, "remote", "set-url", "origin", gone)
        data = payload("workflow_dispatch")
        data["inputs"] = {"loop": "demo", "experiments": "1"}
        result = run_action(w.tmp, w.github, w.lab.root, "workflow_dispatch", data, ARL_PHASE="research",
                            ARL_LOOP="demo", ARL_EXPERIMENTS="1")
    assert result.code == 1, result.stdout + result.stderr
    rendered = GFM.render(result.summary)
    [block] = [html.unescape(b) for b in re.findall(r"<pre><code[^>]*>(.*?)</code></pre>", rendered, re.DOTALL)]
    assert gone in block and "does not appear to be a git repository" in block
    outside = re.sub(r"<pre>.*?</pre>", "", rendered, flags=re.DOTALL)
    assert "<table" not in outside and "<h1" not in outside and not linkable(outside)
    assert re.findall(r"<h3>(.*?)</h3>", outside) == ["arl-bot: <code>demo</code> failed"]


@pytest.mark.unit
def test_the_stop_reason_is_one_cell_of_the_summary_table() -> None:
    loop = config.parse(value_config()).loop("demo")
    reason = f"error: git said{HOSTILE} | and more"
    rendered = GFM.render(summary_table(loop, RunSummary(small_record(), reason), handed_over=True))
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*</tr>", rendered, re.DOTALL)
    stopped = [html.unescape(value) for key, value in rows if key == "stopped"]
    assert len(rows) == 7 and len(stopped) == 1, rendered
    assert stopped[0].startswith("error: git said ``` | x | y | # heading") and "(this job's share" in stopped[0]
    assert "<h1" not in rendered and not linkable(rendered)


def test_sandbox_limits_beyond_the_runner_fail_the_research_job_before_an_experiment(tmp_path: Path) -> None:
    ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    text = value_config().replace("sandbox: none", f"sandbox: {{kind: none, agent: {{memory_mb: {ram_mb * 2}}}}}")
    with world(tmp_path, config_text=text) as w:
        # The gate may run on a small machine: it only reads the config, so the limits are not its to check.
        gate = w.dispatch(experiments=1, ARL_PHASE="gate")
        assert gate.code == 0 and gate.outputs["run"] == "true", gate.stdout + gate.stderr
        research = w.dispatch(experiments=1, ARL_PHASE="research")
        assert research.code != 0
        assert f"loops.demo.sandbox.agent.memory_mb: {ram_mb * 2} MB is more than this machine's {ram_mb} MB " \
               "of RAM" in research.stdout
        assert "`demo` failed" in research.summary and "lower it, or run the loop on a bigger machine" in \
               research.summary
        assert w.record("demo") is None  # not even a baseline
