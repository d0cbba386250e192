"""An autoresearch-lab backend runs unchanged; diagnose shows its samples; third-party backends register."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from arl_bot import cli, config, diagnose, prompt
from arl_bot.backends.python import PythonEvaluator, is_lab_reference
from arl_bot.evaluate import get_evaluator
from arl_bot.loop import RunOptions, Session
from arl_bot.sandbox import get_sandbox

from tests.labs import PY, make_lab

# Written for autoresearch-lab (https://github.com/nikhaldi/autoresearch-lab, harness/backend.py) and
# not changed a character for arl-bot: its import names autoresearch-lab's module.
LAB_BACKEND = textwrap.dedent("""\
    import os
    from pathlib import Path

    from autoresearch_lab.harness.backend import EvalBackend, EvalResult, SampleResult


    class Backend(EvalBackend):
        def setup(self) -> None:
            self.ready = True

        def evaluate(
            self,
            pipeline_dir: Path,
            data_dir: Path,
            sample_ids: list[str] | None = None
        ) -> EvalResult:
            assert self.ready
            guess = float((pipeline_dir / "value.txt").read_text())
            results = []
            for line in (data_dir / "targets.txt").read_text().split():
                sample_id, target = line.split("=")
                if sample_ids and sample_id not in sample_ids:
                    continue
                error = abs(guess - float(target))
                results.append(SampleResult(sample_id=sample_id, score=error,
                                            error="way off" if error > 5 else None, extra={"target": target}))
            score = sum(r.score for r in results) / len(results)
            return EvalResult(score=score, metrics={"pid": float(os.getpid())}, sample_results=results)
    """)

TARGETS = "cat=3\ndog=4\nfish=5\nbird=20\n"


def _config(backend: str = "eval/backend.py:Backend", options: str = "{pipeline_dir: model, data_dir: data}",
            experiments: int = 2) -> str:
    return textwrap.dedent(f"""\
        version: 1
        loops:
          demo:
            editable: ["model/**"]
            protected: ["eval/**", "data/**", "agent.py", "values.txt"]
            metric: {{name: error, goal: minimize}}
            evaluate: {{backend: "{backend}", options: {options}, timeout: 30}}
            agent: {{kind: command, command: "{PY} agent.py values.txt", timeout: 30}}
            sandbox: none
            budget: {{experiments: {experiments}}}
        """)


def test_an_autoresearch_lab_backend_runs_unchanged_in_a_child(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["6", "12"], config_text=_config(),
                   files={"eval/backend.py": LAB_BACKEND, "data/targets.txt": TARGETS})
    summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True)).run()
    record = summary.record
    assert [a.status for a in record.attempts] == ["baseline", "keep", "discard"]
    assert record.attempts[0].metric == pytest.approx((7 + 6 + 5 + 10) / 4)
    assert record.attempts[1].metric == pytest.approx((3 + 2 + 1 + 14) / 4)
    # the backend (and the pipeline it imports) never ran in the bot's process
    assert "lab_backend" not in sys.modules and "autoresearch_lab" not in sys.modules
    worst = diagnose.stored(record.attempts[1])
    assert [s["id"] for s in worst] == ["bird", "cat", "dog", "fish"]
    assert worst[0]["error"] == "way off" and worst[0]["extra"] == {"target": "20"}
    # the next agent's prompt names the best state's worst samples
    text = prompt.render(lab.loop(), "Guess well.", record, "improve", 3)
    assert "Worst samples of the current best (experiment 1, 4 samples)" in text
    assert "- `bird`: 14 — way off" in text


def test_the_lab_backend_result_comes_from_another_process(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["6"], config_text=_config(options="{pipeline_dir: model, data_dir: data, "
                                                                "sample_ids: [cat, dog]}"),
                   files={"eval/backend.py": LAB_BACKEND, "data/targets.txt": TARGETS})
    loop = lab.loop()
    evaluator = get_evaluator(loop, get_sandbox("none"))
    assert isinstance(evaluator, PythonEvaluator)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = evaluator.evaluate(lab.root, 1, scratch)
    assert result.error == "" and result.metric == pytest.approx(6.5)  # only cat and dog
    assert result.metrics["pid"] != os.getpid()


def test_a_backend_that_raises_is_a_crash_with_its_traceback(tmp_path: Path) -> None:
    broken = LAB_BACKEND.replace("assert self.ready", "raise RuntimeError('the emulator is gone')")
    lab = make_lab(tmp_path, ["6"], config_text=_config(),
                   files={"eval/backend.py": broken, "data/targets.txt": TARGETS})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = get_evaluator(lab.loop(), get_sandbox("none")).evaluate(lab.root, 1, scratch)
    assert result.metric is None and "exited with status 1" in result.error
    assert "the emulator is gone" in result.log


def test_arl_bot_names_work_for_new_labs(tmp_path: Path) -> None:
    ours = LAB_BACKEND.replace("from autoresearch_lab.harness.backend import", "from arl_bot.backends.lab import")
    lab = make_lab(tmp_path, ["6"], config_text=_config(backend="python", options=(
        '{class: "eval/backend.py:Backend", pipeline_dir: model, data_dir: data}')),
        files={"eval/backend.py": ours, "data/targets.txt": TARGETS})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = get_evaluator(lab.loop(), get_sandbox("none")).evaluate(lab.root, 1, scratch)
    assert result.metric == pytest.approx(7.0)


def test_diagnose_lists_samples_worst_first_and_follows_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    lab = make_lab(tmp_path, ["6", "12"], config_text=_config(),
                   files={"eval/backend.py": LAB_BACKEND, "data/targets.txt": TARGETS})
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True)).run()
    monkeypatch.chdir(lab.root)
    assert cli.main(["diagnose", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "experiment 1 (keep)" in out and "worst 4 of 4 samples" in out
    lines = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert "bird" in lines[0] and "way off" in lines[0] and "cat" in lines[1] and len(lines) == 2
    assert cli.main(["diagnose", "--sample", "bird", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)["history"]
    assert [(h["experiment"], h["score"]) for h in history] == [(0, 10.0), (1, 14.0), (2, 8.0)]
    assert cli.main(["diagnose", "--eval", "--json", "--top", "1"]) == 0  # the checkout: value 10
    now = json.loads(capsys.readouterr().out)
    assert now["samples"] == [{"id": "bird", "score": 10.0, "error": "way off", "extra": {"target": "20"}}]


def test_diagnose_without_samples_says_where_they_come_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    lab = make_lab(tmp_path, ["8"])
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, dry_run=True)).run()
    monkeypatch.chdir(lab.root)
    assert cli.main(["diagnose"]) == 1
    assert "backends that return them" in capsys.readouterr().err


THIRD_PARTY = textwrap.dedent("""\
    from arl_bot.evaluate import Evaluator, SeedResult


    class ConstantEvaluator(Evaluator):
        def evaluate(self, tree, seed, scratch):
            value = float((tree / "model" / "value.txt").read_text()) * self.loop.evaluate.options["scale"]
            return SeedResult(seed, value, "", "third party", 0.0)
    """)


def test_third_party_backends_register_like_builtins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "thirdparty_eval-1.0.dist-info").mkdir(parents=True)
    (site / "thirdparty_eval-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: thirdparty-eval\nVersion: 1.0\n")
    (site / "thirdparty_eval-1.0.dist-info" / "entry_points.txt").write_text(
        "[arl_bot.evaluators]\nconstant = thirdparty_eval:ConstantEvaluator\n")
    (site / "thirdparty_eval.py").write_text(THIRD_PARTY)
    monkeypatch.syspath_prepend(str(site))
    lab = make_lab(tmp_path, ["6", "12"], config_text=_config(backend="constant", options="{scale: 2}"))
    record = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True)).run().record
    assert [(a.status, a.metric) for a in record.attempts] == [("baseline", 20.0), ("keep", 12.0),
                                                               ("discard", 24.0)]
    # a file.py:Class that derives from Evaluator loads in-process like an entry point; a lab's runs outside
    (tmp_path / "mine.py").write_text(THIRD_PARTY)
    assert not is_lab_reference(f"{tmp_path / 'mine.py'}:ConstantEvaluator")
    (tmp_path / "lab_backend.py").write_text(LAB_BACKEND)
    assert is_lab_reference(f"{tmp_path / 'lab_backend.py'}:Backend")
    assert is_lab_reference("eval/only_in_the_tree.py:Backend")
    cfg = config.parse(_config(backend=f"{tmp_path / 'mine.py'}:ConstantEvaluator", options="{scale: 3}"))
    assert type(get_evaluator(cfg.loop(None), get_sandbox("none"))).__name__ == "ConstantEvaluator"
