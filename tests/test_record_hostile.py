"""Hostile records: metrics at float's edge, entries of the wrong types, a full disk; never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from arl_bot.git import Git
from arl_bot.record import Attempt
from arl_bot.store import RecordStore

from tests.labs import Lab, make_lab

REF = "refs/autoresearch/demo/record"


def cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """arl-bot as the user runs it, in the lab."""
    return subprocess.run([sys.executable, "-m", "arl_bot.cli", *args], cwd=lab.root, capture_output=True,
                          text=True, timeout=300)


def test_metrics_at_the_edge_of_float_are_recorded_and_shown(tmp_path: Path) -> None:
    # -1.7e308 after a baseline of 1.7e308 is a gain of 3.4e308: more than a float holds. The old code
    # raised on writing that gain to the record, and the attempt vanished.
    lab = make_lab(tmp_path, ["-1.7e308", "1.7e308", "1e999"], start="1.7e308")
    run = cli(lab, "run", "--dry-run", "--progress", "plain", "--experiments", "3")
    assert "Traceback" not in run.stderr and run.returncode == 0, run.stderr
    assert "pull-request body" in run.stdout and "-inf" in run.stdout
    shown = cli(lab, "results")
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    rows = {line.split()[0]: line.split() for line in shown.stdout.splitlines()[3:7]}
    assert rows["0"][1:3] == ["baseline", "1.7e+308"]
    assert rows["1"][1:4] == ["keep", "-1.7e+308", "-inf"]
    assert rows["2"][1:4] == ["discard", "1.7e+308", "+inf"]
    assert rows["3"][1] == "crash"
    record = json.loads(cli(lab, "results", "--json").stdout)  # valid JSON: no bare Infinity
    by_number = {a["experiment"]: a for a in record["attempts"]}
    assert by_number[1]["metric"] == -1.7e308 and by_number[1]["extra"]["keep"]["improvement"] == "inf"
    # A number past float's range (1e999 reads as inf) is a crash with a reason, not a metric.
    assert by_number[3]["metric"] is None and "inf" in by_number[3]["reason"]


def _damage(lab: Lab, path: str, entry: object) -> None:
    """Commit one record file with the given JSON onto the record, as a hand edit or a foreign writer would."""
    RecordStore(Git(lab.root), "demo")._write({path: json.dumps(entry).encode()}, "hand edit")


@pytest.mark.parametrize("field, value", [("experiment", "3"), ("metric", "0.5"), ("seeds", [1.0]),
                                          ("status", "kept"), ("extra", "x")])
def test_an_entry_of_the_wrong_types_is_a_damaged_item(tmp_path: Path, field: str, value: object) -> None:
    lab = make_lab(tmp_path, ["5"])
    assert cli(lab, "run", "--dry-run", "--experiments", "1").returncode == 0
    good = json.loads(lab.git("show", f"{REF}:attempts/000/000001.json"))
    _damage(lab, "attempts/000/000002.json", {**good, "experiment": 2, field: value})
    for command in (["results"], ["run", "--dry-run", "--experiments", "1"]):
        failed = cli(lab, *command)
        assert "Traceback" not in failed.stderr, failed.stderr
        assert failed.returncode == 1
        assert f"{REF}:attempts/000/000002.json: cannot read" in failed.stderr
        assert f"`{field}` must be" in failed.stderr and "--repair" in failed.stderr
    repaired = cli(lab, "results", "--repair")
    assert "moved damaged attempts/000/000002.json to damaged/attempts/000/000002.json" in repaired.stdout
    after = cli(lab, "results")
    assert after.returncode == 0 and "Traceback" not in after.stderr
    assert [line.split()[0] for line in after.stdout.splitlines()[3:5]] == ["0", "1"]


def test_wrong_types_in_meta_and_notes_are_damaged_items_too(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["5"])
    assert cli(lab, "run", "--dry-run", "--experiments", "1").returncode == 0
    _damage(lab, "notes/000/000009.json", {"kind": "run_end", "at": 17, "data": {}})
    failed = cli(lab, "results")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert f"{REF}:notes/000/000009.json: cannot read" in failed.stderr and "`at` must be a string" in failed.stderr


def test_a_value_json_cannot_hold_round_trips_through_the_record() -> None:
    attempt = Attempt(experiment=1, status="discard", metric=1.7e308, description="d", parent="p",
                      best_before=-1.7e308, extra={"keep": {"improvement": float("-inf"), "sigma": float("nan")}})
    text = attempt.to_json()
    assert "Infinity" not in text and "NaN" not in text
    back = Attempt.from_dict(json.loads(text))
    assert back.extra["keep"]["improvement"] == "-inf" and back.delta == float("inf")
