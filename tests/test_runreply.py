"""The one reply that tells a command's run: whatever a reason or a label holds, it stays text."""

from __future__ import annotations

import pytest
from arl_bot.github import runreply
from markdown_it import MarkdownIt

pytestmark = pytest.mark.unit


def html(markdown: str) -> str:
    return MarkdownIt("commonmark").render(markdown)


def test_a_stop_reason_in_the_finished_line_renders_as_text() -> None:
    line = runreply.finished(tried=3, kept=1, baseline=1.0, best=0.5, metric="loss",
                             reason="error: @octo-org/team ![x](http://e/x.png) <b>x</b>\n# heading")
    rendered = html(line)
    assert "<img" not in rendered and "<h1" not in rendered and "<b>" not in rendered
    assert "@octo-org/team" not in line  # a mention would ping the team


def test_labels_and_the_runner_name_stay_inside_their_code_spans() -> None:
    queued = html(runreply.queued("/autoresearch continue", "demo", ["self-hosted", "g`pu` **x**"]))
    assert "<strong>" not in queued and queued.count("<code>") == 3
    started = html(runreply.started("box `x` **y**", ""))
    assert "<strong>" not in started and started.count("<code>") == 1
