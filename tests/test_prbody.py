"""The pull-request body: golden renderings, GitHub's size limit, escaping, and the chart drawn by Mermaid."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from arl_bot.prbody import END_MARKER, GITHUB_LIMIT, BodyContext, merge, own, render

from tests import golden
from tests.browser import Browser
from tests.github_view import READY, page
from tests.sample_records import long_record, small_record

CTX = BodyContext(loop="curve", goal="minimize", metric="val_loss",
                  commit_url="https://github.com/o/r/commit/{sha}", run_url="https://github.com/o/r/actions/runs/7")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.mark.unit
def test_small_loop_matches_golden() -> None:
    golden.check("prbody-small.md", render(small_record(), CTX))


@pytest.mark.unit
def test_ten_thousand_attempts_stay_under_githubs_limit() -> None:
    body = render(long_record(10_000), CTX)
    assert len(body) < GITHUB_LIMIT
    assert 'x-axis "experiment" 0 --> 9999' in body  # a numeric axis, not 10,000 labels
    assert body.rstrip().endswith(END_MARKER)
    golden.check("prbody-10000.md", body)


@pytest.mark.unit
def test_agent_text_cannot_break_the_table_or_inject_html() -> None:
    body = render(small_record(), CTX)
    row = next(line for line in body.splitlines() if line.startswith("| 6 |"))
    assert "degree: 4 -> 6 \\| &lt;b>bold&lt;/b>" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 8  # seven cells, whatever the description held
    assert "\n::error::" not in body


@pytest.mark.unit
def test_raw_markdown_carries_a_text_chart() -> None:
    body = render(small_record(), CTX)
    text = body.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    assert text[0].startswith("best so far  ▄▄▃▃▂▂▂▂▁▁▁▁  0.05 → 0.024 (-52.00%)")
    assert text[1].startswith("each tried   ▄▅▃×▂×█×▁▁▁▁")


@pytest.mark.external
def test_mermaid_draws_the_chart_without_errors() -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with Browser(width=1000) as browser:
        for name, record in (("small", small_record()), ("10000", long_record(10_000))):
            html_file = ARTIFACTS / f"prbody-{name}.html"
            html_file.write_text(page(render(record, CTX)), encoding="utf-8")
            report = browser.load(html_file, READY)
            assert report.errors == []
            assert browser.evaluate("document.querySelectorAll('pre.mermaid svg').length") == 1
            # Mermaid drew both series: bars for the attempts and the best-so-far line.
            assert browser.evaluate("document.querySelectorAll('svg .bar-plot-0 rect').length") >= 12
            assert browser.evaluate("document.querySelector('svg .line-plot-1 path').getAttribute('d').length") > 20
            browser.screenshot(ARTIFACTS / f"prbody-{name}.png")


def test_an_update_keeps_what_people_wrote_around_the_markers() -> None:
    old, new = render(small_record(), CTX), render(long_record(40), CTX)
    current = f"Reviewer notes up top.\n\n{old}\nAnd a note below, with <!-- its own comment -->.\n"
    merged = merge(current, new)
    assert merged == f"Reviewer notes up top.\n\n{new.rstrip()}\n\nAnd a note below, with <!-- its own comment -->.\n"
    assert merge(old, new) == new  # nobody added anything: the body is exactly ours


def test_a_body_without_markers_is_kept_and_ours_goes_below() -> None:
    new = render(small_record(), CTX)
    assert merge("Someone rewrote the whole body.", new) == f"Someone rewrote the whole body.\n\n{new}"
    assert merge("", new) == new


def test_the_starting_body_is_ours_to_replace() -> None:
    start = own("## starting\n\nbaseline being measured", "curve")
    new = render(small_record(), CTX)
    assert merge(start + "\nmy words\n", new) == new + "\nmy words\n"


def test_agent_text_cannot_forge_the_end_marker() -> None:
    record = small_record()
    record.attempts[1] = dataclasses.replace(record.attempts[1], description=f"x {END_MARKER} y")
    body = render(record, CTX)
    assert body.count(END_MARKER) == 1 and body.rstrip().endswith(END_MARKER)
    assert merge(body + "\nperson\n", render(small_record(), CTX)).endswith(f"{END_MARKER}\n\nperson\n")


def test_the_text_line_of_a_dry_run_names_the_real_highest_value(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from arl_bot.cli import main

    from tests.labs import make_lab

    lab = make_lab(tmp_path, ["8", "1e9"])  # a diverged run: the cells are clipped, the text must not be
    assert main(["run", "--repo", str(lab.root), "--dry-run", "--experiments", "2"]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("experiments  0 … 2;"))
    assert "lowest = 8, highest = 1e+09" in line and "values beyond it at the edge" in line
