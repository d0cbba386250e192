"""`arl-bot report`: one HTML file that a real headless Chromium opens offline, draws, and cannot be fooled by."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from arl_bot.cli import main
from arl_bot.loop import RunOptions, Session
from arl_bot.report import build_report, failure_kind

from tests.browser import Browser
from tests.labs import make_lab
from tests.sample_records import small_record

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
DRAWN = ("document.querySelectorAll('#metric .main-svg').length > 0 && "
         "document.querySelectorAll('#failures .main-svg').length > 0 && "
         "document.querySelectorAll('#cost .main-svg').length > 0")
EVIL = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.mark.external
def test_report_opens_offline_draws_its_charts_and_escapes_agent_text(tmp_path: Path) -> None:
    record = small_record()
    record.attempts[6] = dataclasses.replace(record.attempts[6], description=EVIL)
    patch = f"diff --git a/model/p.json b/model/p.json\n@@ -1 +1 @@\n-old\n+{EVIL}\n"
    html_file = ARTIFACTS / "report.html"
    ARTIFACTS.mkdir(exist_ok=True)
    html_file.write_text(build_report(record, diff=lambda n: patch), encoding="utf-8")
    with Browser(width=1200) as browser:
        report = browser.load(html_file, DRAWN)
        assert report.errors == []
        assert [u for u in report.requests if not u.startswith("file:")] == []  # nothing from the network
        traces = browser.evaluate("document.getElementById('metric').data.map(t => t.name)")
        assert traces == ["discard", "keep", "baseline", "off the chart (1), at its edge",
                          "no metric (crash, invalid, interrupted)", "best so far", "holdout (kept states)"]
        points = browser.evaluate("document.getElementById('metric').data.filter(t => t.mode === 'markers')"
                                  ".reduce((n, t) => n + t.x.length, 0)")
        assert points == len(record.attempts)  # every attempt is a point, the diverged one at the edge
        assert browser.evaluate("document.querySelectorAll('#metric .scatterlayer .trace').length") >= 2
        assert browser.evaluate("document.querySelectorAll('#seeds .main-svg').length") > 0
        assert browser.evaluate("window.__pwned === undefined")
        assert browser.evaluate("document.querySelectorAll('img').length") == 0
        assert EVIL in browser.evaluate("document.body.innerText")  # shown as text, not run
        assert browser.evaluate("document.querySelectorAll('pre.diff .add').length") == 4
        browser.screenshot(ARTIFACTS / "report.png")


def test_cli_reports_a_real_loop_with_its_diffs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = make_lab(tmp_path, ["8", "crash", "9", "5"])
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=4, dry_run=True)).run()
    out = tmp_path / "out" / "report.html"
    assert main(["report", "--repo", str(lab.root), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.count("<details><summary><b>#") == 2  # the two keeps, newest first, each with its diff
    assert text.index("<b>#4</b>") < text.index("<b>#1</b>")
    assert '<span class="add">+5</span>' in text and '<span class="del">-8</span>' in text
    assert "crash: evaluation exited with an error" in text
    assert "https://" not in text.split("<script", 1)[0]  # no stylesheet or font from a CDN


@pytest.mark.unit
def test_failures_are_sorted_by_cause() -> None:
    kinds = [failure_kind(a) for a in small_record().attempts if a.status in ("crash", "invalid")]
    assert kinds == ["crash: evaluation timed out", "invalid: touched protected paths",
                     "crash: evaluation exited with an error"]


def test_cli_report_shows_every_attempt_and_leaves_out_what_is_empty(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["8", "1e9", "crash", "7"])  # a diverged run far above the best-so-far path
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=4, dry_run=True)).run()
    out = tmp_path / "report.html"
    assert main(["report", "--repo", str(lab.root), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "off the chart (1), at its edge" in text  # a point at the axis' edge, its real value in the hover
    assert "off the chart: 1e+09" in text
    assert 'id="cost"' not in text and "No attempt cost anything" in text  # a command agent spends nothing
    body = text.split("<script", 1)[0] + text.rsplit("</script>", 1)[-1]
    assert not any(icon in body for icon in ("🏁", "✅", "➖", "💥", "🚫", "⏸"))  # no emoji font needed
    assert '<span class="mark discard"></span>discard' in text
