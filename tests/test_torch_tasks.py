"""The built-in torch tasks: offline data, the fixed scoring API, the evaluators, and real loops on the CPU."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from arl_bot import cli, config
from arl_bot.backends.torch_tasks import RESULT_ENV, SPLIT_ENV, charlm, data, digits
from arl_bot.backends.torch_tasks.evaluator import CharLMEvaluator, DigitsEvaluator
from arl_bot.errors import ConfigError
from arl_bot.loop import RunOptions, Session
from arl_bot.sandbox import get_sandbox

from tests.labs import Lab, git

pytestmark = pytest.mark.external


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data cache for the whole file: the corpus is built once, as on a real machine."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _shared(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a shared 2-core machine: one thread per training run
    for module in (charlm, digits):  # the task modules memoise their data per process
        module._prepared.clear()
        module._loaded.clear()
    yield


def task_lab(tmp_path: Path, task: str, *, sandbox: str | None, time_budget: int, steps: int = 30,
             seeds: str = "[1, 2]") -> Lab:
    """A git repository made by `arl-bot init --task`, with a shorter training budget and fewer seeds for tests."""
    root = tmp_path / "lab"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    assert cli.main(["init", "--task", task, "--repo", str(root)]) == 0
    path = root / config.CONFIG_FILE
    text = path.read_text()
    text = text.replace("time_budget: 20,", f"time_budget: {time_budget},")
    text = text.replace("time_budget: 10,", f"time_budget: {time_budget},")
    text = text.replace("steps: 300,", f"steps: {steps},").replace("steps: 60,", f"steps: {steps},")
    text = text.replace("seeds: [1, 2, 3]", f"seeds: {seeds}")
    if sandbox is not None:
        text = text.replace("    runner:", f"    sandbox: {sandbox}\n    runner:")
    path.write_text(text)
    lab = Lab(root)
    lab.commit_all("lab from arl-bot init --task")
    return lab


def loop_for(task: str, options: str = "{}", timeout: int = 60) -> config.Loop:
    """A parsed loop on a built-in task's backend."""
    return config.parse(textwrap.dedent(f"""\
        version: 1
        loops:
          t:
            editable: ["train.py"]
            metric: {{name: val_error}}
            evaluate: {{backend: torch-{task}, options: {options}, timeout: {timeout}}}
            agent: {{kind: command, command: "true"}}
            sandbox: none
        """)).loop("t")


# -- data ---------------------------------------------------------------------------------------------

def test_charlm_corpus_is_rebuilt_identically_from_the_standard_library(tmp_path: Path) -> None:
    cached = data.prepare("charlm")
    fresh = data.prepare("charlm", tmp_path / "elsewhere")
    assert fresh.sha256 == cached.sha256
    assert f"Python {sys.version_info[0]}.{sys.version_info[1]}" in cached.source
    sizes = {split: cached.meta["splits"][split]["bytes"] for split in data.SPLITS}
    assert sizes["train"] > 300_000 and 10_000 < sizes["val"] < sizes["train"] / 10
    text = cached.files("val")[0].read_bytes().decode("utf-8")
    assert "argument" in text  # real English prose from docstrings, not noise


def test_digits_splits_cover_the_bundled_set_once() -> None:
    prepared = data.prepare("digits")
    counts = {s: len(prepared.files(s)[1].read_bytes()) for s in data.SPLITS}
    assert counts == {"train": 1285, "val": 256, "test": 256}
    assert "scikit-learn" in prepared.source


def test_a_damaged_cache_is_rebuilt_and_staging_leaves_the_holdout_out(tmp_path: Path) -> None:
    prepared = data.prepare("digits")
    prepared.files("train")[0].write_bytes(b"tampered")
    rebuilt = data.prepare("digits")
    assert rebuilt.sha256 == prepared.sha256 and len(rebuilt.files("train")[0].read_bytes()) == 1285 * 64
    staged = data.stage(rebuilt, tmp_path / "staged", ["train", "val"])
    assert sorted(p.name for p in staged.root.iterdir()) == [
        "meta.json", "train.x.bin", "train.y.bin", "val.x.bin", "val.y.bin"]
    assert staged.sha256 == rebuilt.sha256  # the run still reports the whole data set's hash


# -- the fixed API ----------------------------------------------------------------------------------

class Unigram(nn.Module):
    """Predicts every byte from the same distribution, whatever came before."""

    def __init__(self, log_probs: torch.Tensor) -> None:
        super().__init__()
        self.log_probs = nn.Parameter(log_probs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_probs.expand(*x.shape, charlm.VOCAB_SIZE)


class Peek(nn.Module):
    """Cheats: predicts byte t+1 by reading input t+1."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot(torch.roll(x, -1, dims=1), charlm.VOCAB_SIZE).float() * self.scale


def test_evaluate_bpb_scores_every_val_byte_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result_file = tmp_path / "result.json"
    monkeypatch.setenv(RESULT_ENV, str(result_file))
    counts = torch.bincount(charlm.get_data("train").long(), minlength=charlm.VOCAB_SIZE).double() + 1
    log_probs = (counts / counts.sum()).log()
    val = charlm.get_data("val").long()
    expected = float(-log_probs[val[1:]].sum() / (len(val) - 1) / math.log(2))

    bpb = charlm.evaluate_bpb(Unigram(log_probs.float()), block_size=100)  # 100 does not divide the split

    assert bpb == pytest.approx(expected, rel=1e-5)
    assert 4.0 < bpb < 6.0  # a unigram model of English text
    result = json.loads(result_file.read_text())
    assert result["metric"] == "val_bpb" and result["eval_bytes"] == len(val) - 1
    assert result["data_sha256"] == data.prepare("charlm").sha256
    assert len(result["samples"]) == math.ceil((len(val) - 1) / 100)
    assert result["samples"][0]["id"] == "val[1:101]" and result["samples"][0]["extra"]["text"]


def test_a_model_that_reads_its_targets_is_refused() -> None:
    with pytest.raises(data.TaskError, match="depends on later bytes"):
        charlm.evaluate_bpb(Peek(), block_size=32)


def test_the_holdout_split_is_not_readable_from_train_py(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(data.TaskError, match="holdout"):
        digits.get_data("test")
    with pytest.raises(data.TaskError, match="holdout"):
        charlm.get_data("test")
    monkeypatch.setenv(SPLIT_ENV, "test")  # a holdout evaluation scores on test instead
    error = digits.evaluate_error(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))
    assert 0.5 < error <= 1.0  # an untrained model is about as bad as guessing


# -- the evaluator ----------------------------------------------------------------------------------

def test_digits_baseline_scores_well_below_chance_with_samples_and_data_hash(tmp_path: Path) -> None:
    lab = task_lab(tmp_path, "digits", sandbox="none", time_budget=10)
    evaluator = DigitsEvaluator(lab.loop(), get_sandbox("none"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = evaluator.evaluate(lab.root, 7, scratch)
    assert result.error == "", result.log
    assert result.metric is not None and 0.0 <= result.metric < 0.2  # chance is 0.9
    assert result.metrics["params"] > 0 and result.metrics["eval_images"] == 256
    assert len(result.samples) == 256
    assert all(s["id"].startswith("val/") and "label" in s["extra"] for s in result.samples)
    assert data.prepare("digits").sha256 in result.log
    assert not (scratch / "task-data" / "test.x.bin").exists()


def test_only_the_fixed_api_can_produce_a_score(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text('print("val_error: 0.0")\n')
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = DigitsEvaluator(loop_for("digits"), get_sandbox("none")).evaluate(tmp_path, 1, scratch)
    assert result.metric is None and "without calling the task's evaluate function" in result.error
    missing = DigitsEvaluator(loop_for("digits", "{script: nope.py}"), get_sandbox("none"))
    assert "no training script nope.py" in missing.evaluate(tmp_path, 1, scratch).error
    (tmp_path / "arl_bot" / "backends").mkdir(parents=True)  # a look-alike of the fixed API beside train.py
    shadowed = DigitsEvaluator(loop_for("digits"), get_sandbox("none")).evaluate(tmp_path, 1, scratch)
    assert shadowed.metric is None and "would shadow the fixed scoring API" in shadowed.error


@pytest.mark.parametrize(("options", "key"), [
    ("{epochs: 3}", "options.epochs"),
    ("{time_budget: -1}", "options.time_budget"),
    ("{split: train}", "options.split"),
    ("{steps: 0}", "options.steps"),
    ("{steps: 2.5}", "options.steps"),
    ("{budget: epochs}", "options.budget"),
    ("{steps: true}", "options.steps"),
    ("{time_budget: 60}", "evaluate.timeout"),
])
def test_wrong_options_name_their_key(options: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        DigitsEvaluator(loop_for("digits", options, timeout=60), get_sandbox("none"))


# -- loops -------------------------------------------------------------------------------------------

def _check_loop(lab: Lab, task: str, metric_ok: tuple[float, float]) -> None:
    session = Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=2, dry_run=True))
    summary = session.run()
    attempts = summary.record.attempts
    assert attempts[0].status == "baseline", attempts[0].reason
    low, high = metric_ok
    assert attempts[0].metric is not None and low < attempts[0].metric < high
    assert data.prepare(task).sha256 in attempts[0].eval_log
    assert len(attempts) == 3 and {a.status for a in attempts[1:]} <= {"keep", "discard"}, \
        [(a.status, a.reason, a.eval_log[-500:]) for a in attempts]
    assert all(" -> " in a.description for a in attempts[1:])  # propose.py says what it changed
    changed = lab.git("diff", "--name-only", "main", lab.loop().branch).split()
    assert changed in ([], ["train.py"])


def test_the_starter_labs_measure_noise_and_keep_only_gains_above_it(tmp_path: Path) -> None:
    for task in ("charlm", "digits"):
        root = tmp_path / task
        root.mkdir()
        git(root, "init", "--quiet", "--initial-branch=main")
        assert cli.main(["init", "--task", task, "--repo", str(root)]) == 0
        loop = config.load(root / config.CONFIG_FILE).loop(None)
        assert loop.keep.rule == "sigma" and len(loop.evaluate.seeds) >= 2 and loop.evaluate.baseline_repeats >= 2
        evaluator = (CharLMEvaluator if task == "charlm" else DigitsEvaluator)(loop, get_sandbox("none"))
        assert evaluator.options.budget == "auto"


def test_on_the_cpu_charlm_trains_a_number_of_steps_and_repeats_its_score(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A fixed 20 s of training on a shared CPU gave one commit 97 to 404 steps and 2.91 to 3.92 bits per
    # byte; budgeted by steps, the same seed trains the same model however busy the machine is.
    lab = task_lab(tmp_path, "charlm", sandbox="none", time_budget=1, steps=12)
    results = []
    for _ in range(2):
        capsys.readouterr()
        assert cli.main(["eval", "--repo", str(lab.root), "--seed", "5"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    first, second = results
    assert first["numbers"]["steps"] == 12 and first["numbers"]["budget_steps"] == 12
    assert first["metric"] == second["metric"]
    assert "trained 12 steps" in first["log_tail"] and "budgeted by steps" in first["log_tail"]


def test_a_time_budget_still_counts_and_reports_its_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    from arl_bot.backends.torch_tasks import BUDGET_BY_ENV, runtime

    monkeypatch.setenv(BUDGET_BY_ENV, "time")
    clock = charlm.budget()
    assert clock.by == "time" and clock.max_steps is None
    monkeypatch.setenv(BUDGET_BY_ENV, "steps")
    counted = charlm.budget()
    taken = 0
    while not counted.done():
        taken += 1
    assert taken == charlm.DEFAULT_STEPS and counted.progress == 1.0
    assert runtime.training()["steps"] == charlm.DEFAULT_STEPS
    monkeypatch.setenv(BUDGET_BY_ENV, "weekly")
    with pytest.raises(data.TaskError, match="auto, time or steps"):
        charlm.budget()


def test_charlm_loop_of_two_experiments_runs_on_the_cpu(tmp_path: Path) -> None:
    lab = task_lab(tmp_path, "charlm", sandbox="none", time_budget=6)
    _check_loop(lab, "charlm", (0.0, 6.0))  # 8 bits is a uniform guess; a few seconds of training beats 6


def test_digits_loop_of_two_experiments_runs_under_the_default_sandbox(tmp_path: Path) -> None:
    lab = task_lab(tmp_path, "digits", sandbox=None, time_budget=10)
    assert Session(lab.repo, lab.config(), lab.loop()).sandbox.name == "bubblewrap"
    _check_loop(lab, "digits", (0.0, 0.2))
