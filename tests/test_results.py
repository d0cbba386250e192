"""`arl-bot results`: every format reads back to what the record holds; karpathy's TSV reads as his."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from arl_bot import results
from arl_bot.cli import main
from arl_bot.loop import RunOptions, Session

from tests.labs import make_lab
from tests.sample_records import small_record


@pytest.mark.unit
def test_json_round_trips_every_field() -> None:
    record = small_record()
    assert results.from_json(results.as_json(record)) == record


@pytest.mark.unit
def test_tsv_round_trips_the_columns() -> None:
    record = small_record()
    rows = results.parse_tsv(results.as_tsv(record))
    expected = [{**row, "sha": row["sha"] or "", "description": " ".join(str(row["description"]).split())}
                for row in results.as_rows(record)]
    assert rows == expected
    assert rows[10]["description"] == "steps: 200 -> 300 ::error::injected"  # the newline did not split the row


def read_karpathy(text: str) -> list[dict[str, str]]:
    """Read results.tsv as karpathy/autoresearch's program.md defines it, strictly."""
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    header, *rows = list(reader)
    assert len(header) == 5 and header[0] == "commit" and header[2:] == ["memory_gb", "status", "description"]
    out = []
    for row in rows:
        assert len(row) == 5, row
        commit, metric, memory, status, _ = row
        assert re.fullmatch(r"[0-9a-f]{7}", commit), commit
        assert re.fullmatch(r"\d+\.\d{6}", metric), metric  # e.g. 0.997900; 0.000000 for crashes
        assert re.fullmatch(r"\d+\.\d", memory), memory  # GB, .1f; 0.0 for crashes
        assert status in ("keep", "discard", "crash")
        if status == "crash":
            assert (metric, memory) == ("0.000000", "0.0")
        out.append(dict(zip(header, row, strict=True)))
    return out


@pytest.mark.unit
def test_karpathy_export_reads_as_autoresearch_results_tsv() -> None:
    record = small_record()
    rows = read_karpathy(results.as_karpathy(record))
    assert list(rows[0]) == ["commit", "val_loss", "memory_gb", "status", "description"]
    assert [r["status"] for r in rows] == ["keep", "discard", "keep", "crash", "keep", "crash", "discard", "crash",
                                           "keep", "discard", "discard", "keep"]
    assert rows[0]["description"] == "baseline" and rows[0]["val_loss"] == "0.050000"
    assert rows[0]["commit"] == record.attempts[0].sha[:7]  # type: ignore[index]
    assert rows[1]["commit"] == results.NO_COMMIT  # a discard never became a commit
    assert rows[3]["description"] == "steps: 200 -> 3000 (crash: timed out after 60s)"
    assert rows[5]["description"] == "edit eval/run.py (invalid: changed protected paths: eval/run.py)"


@pytest.mark.unit
def test_karpathy_memory_comes_from_the_evaluation() -> None:
    record = small_record()
    record.attempts[2] = type(record.attempts[2])(**{**record.attempts[2].__dict__, "extra": {"peak_vram_mb": 45060.2}})
    rows = read_karpathy(results.as_karpathy(record))
    assert rows[2]["memory_gb"] == "44.0"  # 45060.2 MB / 1024, as program.md says


def test_cli_exports_a_real_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = make_lab(tmp_path, ["8", "crash", "9", "5"])
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=4, dry_run=True)).run()
    capsys.readouterr()
    assert main(["results", "--repo", str(lab.root), "--format", "karpathy"]) == 0
    rows = read_karpathy(capsys.readouterr().out)
    assert [(r["status"], r["score"]) for r in rows] == [
        ("keep", "10.000000"), ("keep", "8.000000"), ("crash", "0.000000"), ("discard", "9.000000"),
        ("keep", "5.000000")]
    kept = lab.git("log", "--format=%h", "--abbrev=7", "main..autoresearch/demo").split()
    assert [r["commit"] for r in rows if r["status"] == "keep"][1:] == list(reversed(kept))
    assert main(["results", "--repo", str(lab.root), "--format", "json"]) == 0
    assert results.from_json(capsys.readouterr().out).attempts[4].metric == 5.0
