"""Guards: a keep must also pass the checks and stay within limits; real loops through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from arl_bot import config, guards, prompt
from arl_bot.errors import ConfigError
from arl_bot.evaluate import Measurement, SeedResult
from arl_bot.record import Attempt, Meta, Record
from arl_bot.report import build_report
from arl_bot.store import RecordStore

from tests.labs import PY, Lab, make_lab

ARL = [sys.executable, "-m", "arl_bot.cli"]

# model/value.txt holds `score;peak_vram_mb;latency_ms[;broken]`; the evaluation writes them as JSON to
# $AUTORESEARCH_RESULT (latency `none`: not reported), and prints `lat=<ms>ms` for the parse-pattern test.
EVAL = textwrap.dedent("""\
    import json, os
    from pathlib import Path
    score, mem, lat = Path("model/value.txt").read_text().strip().split(";")[:3]
    data = {"score": float(score), "peak_vram_mb": float(mem), "label": "x", "flag": True}
    if lat != "none":
        data["latency_ms"] = float(lat)
        print(f"lat={lat}ms")
    Path(os.environ["AUTORESEARCH_RESULT"]).write_text(json.dumps(data))
    """)
# The project's check: a round trip that the `broken` marker breaks; it counts its runs in a file.
CHECK = textwrap.dedent("""\
    import sys
    from pathlib import Path
    with open(sys.argv[1], "a") as counter:
        counter.write("run\\n")
    print("checking the round trip")
    if "broken" in Path("model/value.txt").read_text():
        print("roundtrip FAILED for 'h\\u00e9llo'")
        sys.exit(1)
    print("roundtrip ok")
    """)


def guard_config(tmp_path: Path, guards_yaml: str, experiments: int = 3) -> str:
    return textwrap.dedent(f"""\
        version: 1
        loops:
          demo:
            editable: ["model/**"]
            protected: ["eval/**", "agent.py", "values.txt"]
            metric: {{name: score, goal: minimize}}
            evaluate:
              command: "{PY} eval/run.py"
              parse: {{json: score}}
              timeout: 20
            agent: {{kind: command, command: "{PY} agent.py values.txt", timeout: 30}}
            sandbox: none
            budget: {{experiments: {experiments}}}
            guards:
        """) + textwrap.indent(guards_yaml, " " * 6)


CHECKS = "checks:\n  - {name: roundtrip, command: \"PY eval/check.py COUNTER\", timeout: 60}\n"


def guard_lab(tmp_path: Path, values: list[str], guards_yaml: str, *, start: str = "10;1000;10",
              experiments: int = 3) -> Lab:
    counter = tmp_path / "check-runs"
    text = guard_config(tmp_path, guards_yaml.replace("PY", PY).replace("COUNTER", str(counter)), experiments)
    return make_lab(tmp_path, values, start=start, config_text=text,
                    files={"eval/run.py": EVAL, "eval/check.py": CHECK})


def arl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ARL, *args], cwd=lab.root, capture_output=True, text=True, timeout=180)


def attempts(lab: Lab) -> list[dict[str, object]]:
    result = arl(lab, "results", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout)["attempts"])


def check_runs(tmp_path: Path) -> int:
    counter = tmp_path / "check-runs"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


# -- pure: config and judging -----------------------------------------------------------------------
def _loop(guards_yaml: str) -> config.Loop:
    return config.parse(guard_config(Path("/nonexistent"), guards_yaml)).loop("demo")


def test_limits_parse_percentages_and_bounds() -> None:
    loop = _loop("limits:\n  peak_vram_mb: {max: 40000}\n  latency_ms: {max_increase: 5%}\n"
                 "  acc: {min: 0.9, max_decrease: 0.01}\n")
    limits = loop.guards.limits
    assert limits["peak_vram_mb"].max == 40000.0
    assert limits["latency_ms"].max_increase == "5%"
    assert limits["acc"].max_decrease == 0.01 and limits["acc"].min == 0.9


@pytest.mark.parametrize(("yaml_text", "words"), [
    ("limits:\n  latency_ms: {max_increase: five}\n", "'five' is not a percentage"),
    ("limits:\n  latency_ms: {max_increase: -5%}\n", "is not a percentage"),
    ("limits:\n  latency_ms: {max_increase: -3}\n", "must be 0 or more"),
    ("limits:\n  latency_ms: {parse: 'lat=(\\d+)'}\n", "needs `max`, `min`"),
    ("limits:\n  latency_ms: {max: .inf}\n", "finite"),
    ("limits:\n  latency_ms: {maxx: 3}\n", "unknown key 'maxx'"),
    ("limits:\n  latency_ms: {max: 3, parse: 'lat=\\d+'}\n", "one capture group"),
    ("limits:\n  'bad name!': {max: 3}\n", "should match pattern"),
    ("checks:\n  - {name: t, command: 'true'}\n  - {name: t, command: 'false'}\n", "unique"),
])
def test_bad_guards_are_config_errors_with_line_and_key(yaml_text: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _loop(yaml_text)
    assert words in caught.value.message
    assert caught.value.line is not None and caught.value.line >= 14  # the guards section, not line 1
    assert (caught.value.key or "").startswith("loops.demo.guards")


def test_judge_limits_absolute_relative_and_missing() -> None:
    limits = _loop("limits:\n  mem: {max: 100}\n  lat: {max_increase: 5%}\n  acc: {max_decrease: 0.1}\n"
                   ).guards.limits
    best = {"mem": 50.0, "lat": 10.0, "acc": 0.9}
    assert guards.judge_limits({"mem": 100.0, "lat": 10.5, "acc": 0.8}, limits, best) == []
    broken = guards.judge_limits({"mem": 101.0, "lat": 10.6, "acc": 0.79}, limits, best)
    assert [v.name for v in broken] == ["mem", "lat", "acc"]
    assert "101 is not ≤ 100" in broken[0].reason and "≤ 10.5 (+5% of 10)" in broken[1].reason
    missing = guards.judge_limits({"mem": 1.0, "acc": 0.9}, limits, best)
    assert [v.name for v in missing] == ["lat"] and "reported no `lat`" in missing[0].reason
    # the baseline is its own reference for change bounds, but must still report every number
    assert guards.judge_limits({"mem": 1.0, "lat": 99.0, "acc": 0.0}, limits, None) == []
    # a best kept state without the number cannot vouch for a change bound: a failure, not a pass
    assert [v.name for v in guards.judge_limits({"mem": 1.0, "lat": 1.0, "acc": 1.0}, limits, {})] == ["lat", "acc"]


def test_reported_numbers_refuse_odd_names_and_non_numbers() -> None:
    loop = _loop("limits:\n  lat: {max: 3, parse: 'lat=(\\S+)ms'}\n  mem: {max: 3}\n")
    result = json.dumps({"score": 1.0, "ok_name": 2, "bad name<b>": 3, "flag": True, "nan": float("nan"),
                         "text": "4", "nested": {"x": 1}})
    found = guards.reported("noise\nlat=2.5ms\nmem: 7\nlat=oops ms\n", result, loop)
    assert found == {"ok_name": 2.0, "lat": 2.5, "mem": 7.0}


# -- real loops through the command line ----------------------------------------------------------
def test_a_gain_that_fails_a_check_is_a_discard_naming_the_check(tmp_path: Path) -> None:
    lab = guard_lab(tmp_path, ["8;1000;10;broken", "9;1000;10", "11;1000;10"], CHECKS)
    run = arl(lab, "run", "--dry-run")
    assert run.returncode == 0, run.stderr
    _, first, second, third = attempts(lab)
    assert first["status"] == "discard" and first["metric"] == 8.0
    assert "check `roundtrip` exited with status 1" in str(first["reason"])
    assert "roundtrip FAILED for 'héllo'" in str(first["reason"])  # the end of its output
    assert second["status"] == "keep"
    entries = second["extra"]["guards"]  # type: ignore[index]
    assert [(e["name"], e["kind"], e["ok"]) for e in entries] == [("roundtrip", "check", True)]
    assert isinstance(second["extra"]["guard_s"], float)  # type: ignore[index]
    assert third["status"] == "discard" and "guards" not in third["extra"]  # type: ignore[operator]
    assert check_runs(tmp_path) == 3  # the base, and the two would-be keeps; never the plain discard
    assert "experiment 1: DISCARD score=8" in run.stderr and "turned down by guard roundtrip" in run.stderr
    table = arl(lab, "results").stdout
    assert "guards: roundtrip ok" in table and "checks " in table and "evaluation " in table


def test_a_gain_that_breaks_a_limit_is_a_discard(tmp_path: Path) -> None:
    lab = guard_lab(tmp_path, ["8;5000;10", "7;1000;11", "6;1000;10.4"],
                    "limits:\n  peak_vram_mb: {max: 4000}\n  latency_ms: {max_increase: 5%}\n" + CHECKS)
    run = arl(lab, "run", "--dry-run")
    assert run.returncode == 0, run.stderr
    _, first, second, third = attempts(lab)
    assert first["status"] == "discard" and "limit `peak_vram_mb`: 5000 is not ≤ 4000" in str(first["reason"])
    assert second["status"] == "discard" and "limit `latency_ms`: 11 is not ≤ 10.5" in str(second["reason"])
    assert third["status"] == "keep"
    shown = {e["name"]: e for e in third["extra"]["guards"]}  # type: ignore[index]
    assert shown["latency_ms"]["value"] == 10.4 and shown["peak_vram_mb"]["limit"] == "≤ 4000"
    assert check_runs(tmp_path) == 2  # limits first: a broken limit spares the checks
    karpathy = arl(lab, "results", "--format", "karpathy").stdout.splitlines()
    assert karpathy[0].split("\t")[2] == "memory_gb" and karpathy[1].split("\t")[2] == "1.0"  # 1000 MB
    rows = arl(lab, "results", "--tsv").stdout.splitlines()
    assert rows[0].split("\t")[-2:] == ["guard_s", "numbers"]
    assert rows[-1].split("\t")[-1] == "latency_ms=10.4 peak_vram_mb=1000"


@pytest.mark.parametrize(("start", "guards_yaml", "named"), [
    ("10;5000;10", "limits:\n  peak_vram_mb: {max: 4000}\n", "the base fails guard `peak_vram_mb`"),
    ("10;1000;10;broken", CHECKS, "the base fails guard `roundtrip`"),
    ("10;1000;none", "limits:\n  latency_ms: {max_increase: 5%}\n", "reported no `latency_ms`"),
])
def test_a_base_that_fails_a_guard_stops_the_run_before_any_experiment(
        tmp_path: Path, start: str, guards_yaml: str, named: str) -> None:
    lab = guard_lab(tmp_path, ["1;1;1"], guards_yaml, start=start)
    run = arl(lab, "run", "--dry-run")
    assert run.returncode == 1  # an ArlError: a message and a hint, no traceback
    assert named in run.stderr and "Traceback" not in run.stderr
    assert "change that guard under `guards:`" in run.stderr
    assert [a["status"] for a in attempts(lab)] == ["crash"]  # no experiment 1; the next run measures again


def test_a_candidate_that_stops_reporting_a_number_is_a_discard(tmp_path: Path) -> None:
    lab = guard_lab(tmp_path, ["8;1000;none"], "limits:\n  latency_ms: {max: 100, parse: 'lat=(\\S+)ms'}\n",
                    experiments=1)
    assert arl(lab, "run", "--dry-run").returncode == 0
    _, first = attempts(lab)
    assert first["status"] == "discard" and "reported no `latency_ms`" in str(first["reason"])


def test_guards_added_later_re_measure_the_best_before_any_experiment(tmp_path: Path) -> None:
    lab = guard_lab(tmp_path, ["8;5000;10"], "limits: {}\n", experiments=1)
    assert arl(lab, "run", "--dry-run").returncode == 0
    assert [a["status"] for a in attempts(lab)] == ["baseline", "keep"]  # 5000 MB, unguarded
    lab.write(".autoresearch.yml", guard_config(tmp_path, "limits:\n  peak_vram_mb: {max: 4000}\n"))
    lab.commit_all("guard memory")
    run = arl(lab, "run", "--dry-run")
    assert run.returncode == 1 and "autoresearch/demo as it is now fails guard `peak_vram_mb`" in run.stderr
    last = attempts(lab)[-1]
    assert last["status"] == "crash" and "not yet held to the guards in force" in str(last["description"])


def test_extra_numbers_reach_the_record_and_eval(tmp_path: Path) -> None:
    lab = guard_lab(tmp_path, ["8;1000;10"], "limits: {}\n", experiments=1)
    assert arl(lab, "run", "--dry-run").returncode == 0
    base, first = attempts(lab)
    assert base["extra"]["metrics"] == {"peak_vram_mb": 1000.0, "latency_ms": 10.0}  # type: ignore[index]
    assert "label" not in first["extra"]["metrics"]  # type: ignore[operator]
    evaluated = json.loads(arl(lab, "eval").stdout)
    assert evaluated["numbers"] == {"latency_ms": 10.0, "peak_vram_mb": 1000.0}


def test_the_prompt_states_the_guards_and_the_last_failure() -> None:
    loop = _loop("checks:\n  - {name: tests, command: 'pytest -q'}\nlimits:\n  peak_vram_mb: {max: 40000}\n")
    meta = Meta(loop="demo", base_branch="main", base_sha="0" * 40, created_at="", goal="minimize", metric="score")
    failed = Attempt(experiment=1, status="discard", metric=8.0, description="wider", parent="0" * 40,
                     reason="mean 8 < 10; but check `tests` exited with status 1; its output ends:\nE assert",
                     extra={"guards": [{"name": "tests", "kind": "check", "ok": False}]})
    base = Attempt(experiment=0, status="baseline", metric=10.0, description="baseline", parent="0" * 40,
                   sha="0" * 40)
    text = prompt.render(loop, "Lower it.", Record(meta=meta, attempts=[base, failed]), "improve", 2)
    assert "check `tests`: `pytest -q` must exit 0" in text
    assert "limit `peak_vram_mb`: at most 40000" in text
    assert "check `tests` exited with status 1" in text


# The agent's own code, which a check runs: it passes only if it could write the tree or read a secret.
EVIL_HOOK = textwrap.dedent("""\
    import os, sys
    from pathlib import Path
    got = []
    try:
        Path("model/value.txt").write_text("1;1;1\\n")
        got.append("wrote the tree")
    except OSError as exc:
        print(f"tree: {exc.strerror}")
    if os.environ.get("ARL_TEST_SECRET"):
        got.append("saw the secret")
    print(f"got: {got}")
    sys.exit(0 if got else 1)
    """)
EVIL_AGENT = textwrap.dedent(f"""\
    from pathlib import Path
    Path("model/value.txt").write_text("8;1000;10\\n")
    Path("model/hook.py").write_text({EVIL_HOOK!r})
    """)


def test_checks_run_in_the_evaluation_sandbox_not_on_the_host(tmp_path: Path) -> None:
    counter = tmp_path / "unused"
    text = guard_config(tmp_path, f"checks:\n  - {{name: hook, command: \"{PY} model/hook.py {counter}\"}}\n")
    lab = make_lab(tmp_path, ["unused"], start="10;1000;10", config_text=text.replace(
        "sandbox: none", "sandbox: bubblewrap"), files={"eval/run.py": EVAL, "agent.py": EVIL_AGENT,
                                                        "model/hook.py": "print('fine')\n"})
    env = {**os.environ, "ARL_TEST_SECRET": "hunter2"}
    run = subprocess.run([*ARL, "run", "--dry-run", "--experiments", "1"], cwd=lab.root, env=env,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    _, first = attempts(lab)
    assert first["status"] == "discard" and "check `hook` exited with status 1" in str(first["reason"])
    assert "tree: Read-only file system" in str(first["reason"]) and "got: []" in str(first["reason"])
    assert "hunter2" not in json.dumps(attempts(lab))
    assert lab.git("show", "autoresearch/demo:model/value.txt") == "10;1000;10"


def test_the_pr_body_lists_the_guards_in_force_and_what_each_keep_passed(tmp_path: Path) -> None:
    lab = guard_lab(tmp_path, ["8;1000;10;broken", "9;1000;10"],
                    "limits:\n  peak_vram_mb: {max: 4000}\n" + CHECKS, experiments=2)
    run = arl(lab, "run", "--dry-run")  # a dry run prints the body it would post
    assert run.returncode == 0, run.stderr
    body = run.stdout
    assert "### Guards" in body and "| limit `peak_vram_mb` | at most 4000 |" in body
    assert "| check `roundtrip` |" in body and "eval/check.py" in body
    assert "1 would-be keep turned down by a guard." in body
    assert "| turned down by guard roundtrip |" in body  # the latest experiments' why column
    assert "| 2 | keep | peak_vram_mb 1000 (≤ 4000) ok, roundtrip ok" in body
    record = RecordStore(lab.repo, "demo").load()
    assert record is not None
    assert "guards: peak_vram_mb 1000 (≤ 4000) ok, roundtrip ok" in build_report(record)


def test_the_docs_example_is_a_valid_config() -> None:
    page = (Path(__file__).parent.parent / "docs" / "measurement.md").read_text(encoding="utf-8")
    section = page.split("\n## Guards\n", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    loop = _loop(textwrap.dedent(block.split("\n", 1)[1]))
    assert [c.name for c in loop.guards.checks] == ["tests", "export"]
    assert loop.guards.limits["latency_ms"].max_increase == "5%"
    assert guards.reported("throughput: 950.5 tok/s\n", "", loop) == {"tokens_per_s": 950.5}


def test_a_python_backends_metrics_are_recorded_and_limited(tmp_path: Path) -> None:
    from tests.test_python_backend import LAB_BACKEND, TARGETS, _config

    text = _config(experiments=1) + "    guards:\n      limits:\n        pid: {min: 2}\n"
    lab = make_lab(tmp_path, ["6"], config_text=text,
                   files={"eval/backend.py": LAB_BACKEND, "data/targets.txt": TARGETS})
    assert arl(lab, "run", "--dry-run").returncode == 0
    base, first = attempts(lab)
    assert first["status"] == "keep"
    assert float(first["extra"]["metrics"]["pid"]) > 1  # type: ignore[index]
    assert [e["name"] for e in base["extra"]["guards"]] == ["pid"]  # type: ignore[index]
    assert "pid=" in arl(lab, "results").stdout


def test_an_evaluation_cannot_flood_the_record_with_numbers() -> None:
    loop = _loop("limits: {}\n")
    flood = json.dumps({f"n{i}": i for i in range(10_000)})
    assert len(guards.reported("", flood, loop)) == guards.MAX_NUMBERS
    # a backend's own metrics: the same cap, and names that could carry markup are dropped
    many = {**{f"m{i}": float(i) for i in range(10_000)}, "<img src=x>": 1.0, "nan": float("nan")}
    measured = Measurement((SeedResult(1, 0.5, metrics=many), SeedResult(2, 0.5, metrics={"m0": 2.0})))
    found = guards.numbers(measured)
    assert len(found) == guards.MAX_NUMBERS and found["m0"] == 1.0 and "<img src=x>" not in found


def test_a_revert_records_the_numbers_and_the_next_run_holds_it_to_the_guards(tmp_path: Path) -> None:
    from arl_bot.loop import RunOptions, Session
    from arl_bot.revert import revert

    lab = guard_lab(tmp_path, ["8;1000;10"], "limits:\n  peak_vram_mb: {max: 4000}\n", experiments=1)
    assert arl(lab, "run", "--dry-run").returncode == 0
    revert(Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True)), 1)
    reverted = attempts(lab)[-1]
    assert reverted["status"] == "keep" and reverted["extra"]["metrics"]["peak_vram_mb"] == 1000.0  # type: ignore[index]
    assert "guards" not in reverted["extra"]  # type: ignore[operator]  # a bot change the guards never judged
    assert arl(lab, "run", "--dry-run", "--experiments", "1").returncode == 0
    statuses = [(a["status"], a["description"]) for a in attempts(lab)][3:]
    assert statuses[0][0] == "baseline" and "not yet held to the guards in force" in str(statuses[0][1])
