"""Hostile records: metrics at float's edge, entries of the wrong types, a full disk; never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from arl_bot.git import Git
from arl_bot.record import Attempt
from arl_bot.store import RecordStore
from arl_bot.sync import refusal

from tests.github_standin.git_http import GitHttpServer
from tests.labs import Lab, git, make_lab, value_config

REF = "refs/autoresearch/demo/record"


def cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """arl-bot as the user runs it, in the lab."""
    return subprocess.run([sys.executable, "-m", "arl_bot.cli", *args], cwd=lab.root, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("evaluate", ["seeds: [1]", "seeds: [1, 2]\n      baseline_repeats: 2"])
def test_metrics_at_the_edge_of_float_are_recorded_and_shown(tmp_path: Path, evaluate: str) -> None:
    # -1.7e308 after a baseline of 1.7e308 is a gain of 3.4e308: more than a float holds. The old code
    # raised on writing that gain to the record, and the attempt vanished; two seeds overflowed their mean.
    text = value_config(extra="keep: sigma" if "[1, 2]" in evaluate else "").replace("seeds: [1]", evaluate)
    lab = make_lab(tmp_path, ["-1.7e308", "1.7e308", "1e999"], start="1.7e308", config_text=text)
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
                      best_before=-1.7e308, extra={"keep": {"improvement": float("-inf"), "sigma": float("nan")},
                                                   "by_pair": {(1, 2): 0.5}, "when": Path("/x")})
    text = attempt.to_json()
    assert "Infinity" not in text and "NaN" not in text
    back = Attempt.from_dict(json.loads(text))
    assert back.extra["keep"]["improvement"] == "-inf" and back.delta == float("inf")
    assert back.extra["by_pair"] == {"(1, 2)": 0.5} and back.extra["when"] == "/x"


BIG_AGENT = """\
import os
from pathlib import Path
Path("model/value.txt").write_text("{value}\\n")
Path("model/big.bin").write_bytes(os.urandom(1_500_000))  # over the stand-in's lowered per-file limit
Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text("value {value} and a big file\\n")
"""


def _behind_standin(tmp_path: Path, value: str) -> tuple[Lab, GitHttpServer]:
    """A lab whose origin is the GitHub stand-in's git server, with GitHub's per-file limit lowered to 1 MB."""
    lab = make_lab(tmp_path, ["5"], remote=True)
    lab.use_agent("big_agent.py", BIG_AGENT.format(value=value))
    lab.git("push", "--quiet", "origin", "main")
    server = GitHttpServer(tmp_path, "tok", file_limit=1_000_000)
    return lab, server


def test_a_discarded_big_file_leaves_a_record_github_accepts(tmp_path: Path) -> None:
    lab, server = _behind_standin(tmp_path, "12")  # worse than the baseline's 10: a discard
    with server:
        lab.git("remote", "set-url", "origin", server.url.replace("://", "://x-access-token:tok@") + "/remote.git")
        run = cli(lab, "run", "--experiments", "1", "--progress", "plain")
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert lab.remote is not None
    assert git(lab.remote, "rev-parse", REF) == lab.git("rev-parse", REF)  # the record landed on "GitHub"
    sizes = git(lab.remote, "cat-file", "--batch-all-objects", "--batch-check=%(objectsize)").split()
    assert max(int(size) for size in sizes) < 1_000_000
    patch = cli(lab, "results", "--diff", "1").stdout
    assert patch.startswith("# arl-bot: this patch is shortened to fit the record")
    assert "a/model/big.bin b/model/big.bin  1,500,000 bytes  blob " in patch and "(binary)" in patch
    assert "+12" in patch  # small text files keep their diff: the change can be read and re-applied
    assert "the whole change is commit" not in patch  # a discard has no commit


def test_a_kept_big_file_github_refuses_is_named_not_blamed_on_another_pusher(tmp_path: Path) -> None:
    lab, server = _behind_standin(tmp_path, "5")  # better than 10: a keep, committed with its big file
    with server:
        lab.git("remote", "set-url", "origin", server.url.replace("://", "://x-access-token:tok@") + "/remote.git")
        run = cli(lab, "run", "--experiments", "1", "--progress", "plain")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "origin refused the push of the research branch and record: model/big.bin is 1.43 MB, over " \
           "GitHub's limit of 0.95 MB a file" in run.stderr
    assert "git log --stat refs/heads/autoresearch/demo" in run.stderr
    assert "someone else" not in run.stderr
    sha = lab.git("rev-parse", "autoresearch/demo")
    patch = cli(lab, "results", "--diff", "1").stdout
    assert f"# the whole change is commit {sha}: `git show --binary {sha}`" in patch


@pytest.mark.parametrize("stderr, words", [
    ("remote: Permission to o/r.git denied to bot.\nfatal: unable to access: The requested URL returned error: 403",
     "no permission to write"),
    ("remote: error: GH006: Protected branch update failed for refs/heads/autoresearch/demo.", "branch protection"),
    ("remote: refusing: we do not take pushes on Fridays\nerror: failed to push some refs", "pre-receive hook"),
])
def test_a_push_refused_for_good_says_why(stderr: str, words: str) -> None:
    error = refusal("origin", "refs/heads/autoresearch/demo", stderr)
    assert error is not None and words in str(error) and "someone else" not in str(error)


def test_only_a_non_fast_forward_is_a_race() -> None:
    stderr = ("error: atomic push failed for ref refs/heads/autoresearch/demo. status: 5\n"
              "hint: Updates were rejected because the remote contains work that you do not have locally.")
    assert refusal("origin", "refs/heads/autoresearch/demo", stderr) is None


FILLING_EVAL = """\
import os
from pathlib import Path
value = Path("model/value.txt").read_text().strip()
if value == "fill":  # this evaluation fills the disk the repository is on, as a big checkpoint would
    fd = os.open({filler!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, bytes(65536))
    except OSError:
        pass
    os.ftruncate(fd, max(0, os.fstat(fd).st_size - 8192))  # two pages left: git can still reset the tree
    os.close(fd)
    value = "12"
print(f"score: {{float(value)}}")
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs of its own (root only: `mount -t tmpfs` is how a test gets a disk that really fills)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_full_disk_stops_the_run_cleanly_with_the_attempt_recorded(small_disk: Path) -> None:
    filler = small_disk / "filler"
    lab = make_lab(small_disk, ["fill", "8"], files={"eval/run.py": FILLING_EVAL.format(filler=str(filler))})
    run = cli(lab, "run", "--dry-run", "--experiments", "1", "--progress", "plain")
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == 1
    assert "the disk holding" in run.stderr and "is full" in run.stderr
    assert "experiment 1 (discard) was recorded in the space arl-bot keeps in reserve" in run.stderr
    assert "df -h" in run.stderr
    filler.unlink()  # the user frees space
    shown = cli(lab, "results")
    assert shown.returncode == 0, shown.stderr
    rows = [line.split()[:2] for line in shown.stdout.splitlines()[3:5]]
    assert rows == [["0", "baseline"], ["1", "discard"]]  # not "interrupted": the attempt was not lost
    assert "error: the disk holding" in shown.stdout  # the run's end says why it stopped
    again = cli(lab, "run", "--dry-run", "--experiments", "1")
    assert again.returncode == 0, again.stderr
    assert (lab.repo.common_dir / "autoresearch" / "demo.reserve").stat().st_size == 2 * 1024 * 1024
