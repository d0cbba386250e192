"""Seeds, noise, keep rules, short-circuit and holdout on real loops over real git labs."""

from __future__ import annotations

import statistics
import textwrap
from pathlib import Path

import pytest
from arl_bot import config, prompt
from arl_bot.errors import ConfigError
from arl_bot.evaluate import get_evaluator
from arl_bot.loop import RunOptions, Session
from arl_bot.measurer import Measurer
from arl_bot.prbody import BodyContext, render
from arl_bot.record import Record

from tests.labs import EVAL_VALUE, PY
from tests.noisy_lab import noisy_config, noisy_lab


def _run(tmp_path: Path, name: str, values: list[str], cfg: str, experiments: int | None = None,
         files: dict[str, str] | None = None) -> Record:
    folder = tmp_path / name
    folder.mkdir()
    lab = noisy_lab(folder, values, cfg, files)
    summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=experiments, dry_run=True)).run()
    return summary.record


def _body(record: Record) -> str:
    return render(record, BodyContext(loop="demo", goal=record.meta.goal, metric=record.meta.metric))


# Planted noise: sigma 1 per run; 9.9, 9.8, 9.6 and 9.1 are true gains below sigma, 6 is a real one.
PLANTED = ["9.9", "9.8", "9.6", "9.1", "6"]


def test_planted_noise_mean_keeps_sub_sigma_changes_sigma_keeps_only_the_real_one(tmp_path: Path) -> None:
    mean = _run(tmp_path, "mean", PLANTED, noisy_config())
    assert [a.status for a in mean.attempts] == ["baseline", "keep", "keep", "discard", "keep", "keep"]
    sigma = _run(tmp_path, "sigma", PLANTED, noisy_config(evaluate="baseline_repeats: 2", loop="keep: sigma"))
    assert [a.status for a in sigma.attempts] == ["baseline", "discard", "discard", "discard", "discard", "keep"]
    kept = [a for a in sigma.attempts if a.status == "keep"]
    assert [a.description for a in kept] == ["set value to 6"]
    baseline = sigma.attempts[0]
    runs = baseline.extra["noise"]["runs"]
    assert len(runs) == 2 and len(runs[0]) == 4  # every seed, twice
    assert baseline.extra["noise"]["sigma"] == pytest.approx(statistics.stdev([v for r in runs for v in r]))
    decision = sigma.attempts[4].extra["keep"]
    assert decision["rule"] == "sigma" and not decision["keep"]
    assert decision["threshold"] == pytest.approx(2 * baseline.extra["noise"]["sigma"])
    assert "2σ" in sigma.attempts[4].reason
    body = _body(sigma)
    assert "### Measurement" in body and "noise σ" in body and "k·σ" in body


@pytest.mark.unit
def test_keep_rule_config_forms_and_errors() -> None:
    loop = config.parse(noisy_config(loop="keep: welch")).loop(None)
    assert loop.keep.rule == "welch" and loop.keep.confidence == 0.95
    loop = config.parse(noisy_config(loop="keep: {rule: sigma, k: 3}")).loop(None)
    assert loop.keep.k == 3.0
    with pytest.raises(ConfigError, match="needs a noise estimate"):
        config.parse(noisy_config(seeds="[1]", loop="keep: sigma"))
    with pytest.raises(ConfigError, match=r"mean.*sigma.*welch|rule"):
        config.parse(noisy_config(loop="keep: {rule: median}"))


def test_welch_rule_records_its_confidence(tmp_path: Path) -> None:
    record = _run(tmp_path, "welch", ["6", "5.8"], noisy_config(loop="keep: welch"), experiments=2)
    assert [a.status for a in record.attempts] == ["baseline", "keep", "discard"]
    sure, unsure = record.attempts[1].extra["keep"], record.attempts[2].extra["keep"]
    assert sure["confidence"] >= 0.95 > unsure["confidence"]
    assert "Welch test confidence" in record.attempts[2].reason
    assert "confidence it is better" in _body(record)


def test_short_circuit_saves_evaluations_on_a_discard_heavy_sequence(tmp_path: Path) -> None:
    values = ["15", "14", "9.9", "16"]  # mostly far worse than the baseline's 10
    full = _run(tmp_path, "full", values, noisy_config(budget="{experiments: 4}"))
    cut = _run(tmp_path, "cut", values, noisy_config(evaluate="short_circuit: true", budget="{experiments: 4}"))
    assert [a.status for a in cut.attempts] == [a.status for a in full.attempts]  # same decisions...
    runs_full = sum(len(a.seeds) for a in full.attempts[1:])
    runs_cut = sum(len(a.seeds) for a in cut.attempts[1:])
    assert runs_full == 16 and runs_cut == 16 - 3 * 3  # ...for 9 fewer evaluation runs
    skipped = [a for a in cut.attempts if a.extra.get("skipped_seeds")]
    assert [a.description for a in skipped] == ["set value to 15", "set value to 14", "set value to 16"]
    assert all(a.extra["skipped_seeds"] == [2, 3, 4] and a.extra["saved_eval_s"] > 0 for a in skipped)
    assert all(a.reason.startswith("short-circuit:") for a in skipped)
    assert "seed runs skipped" in _body(cut)


def test_seeds_run_in_parallel_when_allowed(tmp_path: Path) -> None:
    log = tmp_path / "times.log"
    command = f"{PY} eval/run.py --seed {{seed}} --sleep 0.4 --log {log}"
    lab = noisy_lab(tmp_path, ["9"], noisy_config(command=command, evaluate="parallel: 4"))
    loop = lab.loop()
    measurer = Measurer(loop, get_evaluator(loop, Session(lab.repo, lab.config(), loop).sandbox))
    measurement = measurer.measure(lab.root, [1, 2, 3, 4])
    assert measurement.metric is not None and [s.seed for s in measurement.seeds] == [1, 2, 3, 4]
    events = [line.split() for line in log.read_text().splitlines()]
    starts = [float(t) for _, t, kind in events if kind == "start"]
    ends = [float(t) for _, t, kind in events if kind == "end"]
    assert len(starts) == 4 and max(starts) < min(ends)  # all four were running at once


PROMPTS_AGENT = textwrap.dedent("""\
    import os, sys
    from pathlib import Path
    values = Path("values.txt").read_text().split()
    n = int(os.environ["AUTORESEARCH_EXPERIMENT"])
    with open(sys.argv[1], "a") as log:
        log.write(Path(os.environ["AUTORESEARCH_PROMPT_FILE"]).read_text() + "\\n=====\\n")
    value = values[(n - 1) % len(values)]
    Path("model/value.txt").write_text(value + "\\n")
    Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text(f"set value to {value}\\n")
    """)

# The holdout reads the same value but gets worse once the validation value drops below 8 (overfitting);
# its scores (1009, 1010, 1011) are distinctive so a test can look for them in the agent's prompt.
EVAL_HOLDOUT = textwrap.dedent("""\
    from pathlib import Path
    value = float(Path("model/value.txt").read_text().strip())
    print(f"score: {1000 + (value if value >= 8 else 16 - value)}")
    """)


def _holdout_config(tmp_path: Path, extra: str = "", budget: str = "{experiments: 2}") -> str:
    cfg = noisy_config(seeds="[1]", command=f"{PY} eval/value.py", budget=budget,
                       loop=f'holdout: {{command: "{PY} eval/holdout.py", seeds: [1]{extra}}}')
    return cfg.replace(f"{PY} agent.py values.txt", f"{PY} agent.py {tmp_path / 'prompts.log'}")


def test_holdout_divergence_is_flagged_and_never_reaches_the_agent(tmp_path: Path) -> None:
    record = _run(tmp_path, "lab", ["9", "5", "4"], _holdout_config(tmp_path, budget="{experiments: 3}"),
                  files={"eval/value.py": EVAL_VALUE, "eval/holdout.py": EVAL_HOLDOUT, "agent.py": PROMPTS_AGENT})
    assert [a.status for a in record.attempts] == ["baseline", "keep", "keep", "keep"]
    holdouts = [a.extra["holdout"]["metric"] for a in record.attempts]
    assert holdouts == [1010.0, 1009.0, 1011.0, 1012.0]
    body = _body(record)
    assert "[!WARNING]" in body and "overfitting" in body and "holdout worse" in body
    assert "| 0 baseline | 10 | 1010 |" in body
    prompts = (tmp_path / "prompts.log").read_text()
    assert prompts.count("=====") == 3
    assert not any(str(v) in prompts for v in (1009, 1010, 1011, 1012)) and "holdout" not in prompts.lower()


def test_holdout_can_veto_a_keep(tmp_path: Path) -> None:
    record = _run(tmp_path, "lab", ["9", "5"], _holdout_config(tmp_path, ", must_not_worsen: true"),
                  files={"eval/value.py": EVAL_VALUE, "eval/holdout.py": EVAL_HOLDOUT, "agent.py": PROMPTS_AGENT})
    assert [a.status for a in record.attempts] == ["baseline", "keep", "discard"]
    assert "holdout got worse" in record.attempts[2].reason
    assert record.best is not None and record.best.metric == 9.0


def test_holdout_runs_at_the_end_for_a_best_that_has_none(tmp_path: Path) -> None:
    folder = tmp_path / "lab"
    folder.mkdir()
    lab = noisy_lab(folder, ["9", "12"], noisy_config(seeds="[1]", command=f"{PY} eval/value.py"),
                    files={"eval/value.py": EVAL_VALUE, "eval/holdout.py": EVAL_HOLDOUT})
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=1, dry_run=True)).run()
    # The holdout is added later: the best (experiment 1) was kept without one.
    cfg = config.parse(noisy_config(seeds="[1]", command=f"{PY} eval/value.py",
                                    loop=f'holdout: {{command: "{PY} eval/holdout.py", seeds: [1]}}'))
    record = Session(lab.repo, cfg, cfg.loop(None), RunOptions(experiments=1, dry_run=True)).run().record
    assert record.attempts[-1].status == "discard"
    end = [n for n in record.notes if n.kind == "run_end"][-1]
    assert end.data["holdout"]["experiment"] == 1 and end.data["holdout"]["metric"] == 1009.0
    assert "end of run (best: 1)" in _body(record)


def test_prompt_never_shows_holdout_numbers_even_from_the_record(tmp_path: Path) -> None:
    record = _run(tmp_path, "lab", ["9"], _holdout_config(tmp_path, budget="{experiments: 1}"),
                  files={"eval/value.py": EVAL_VALUE, "eval/holdout.py": EVAL_HOLDOUT, "agent.py": PROMPTS_AGENT})
    cfg = config.parse(_holdout_config(tmp_path))
    text = prompt.render(cfg.loop(None), "Lower it.", record, "improve", 2)
    assert "1009" not in text and "1010" not in text


def test_a_baseline_noisier_than_min_delta_under_keep_mean_is_warned_with_the_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from arl_bot import cli

    lab = noisy_lab(tmp_path, ["9.9"], noisy_config(budget="{experiments: 1}"))
    assert cli.main(["run", "--repo", str(lab.root), "--dry-run"]) == 0
    printed = capsys.readouterr()
    warning = next(line for line in printed.err.splitlines() if "baseline's own spread" in line)
    assert "min_delta 0" in warning and "keep: {rule: sigma, k: 2}" in warning
    assert "> [!WARNING]\n> The baseline's own spread" in printed.out  # the dry run's PR body says it too
    # a noise-aware rule sets its threshold from the noise: nothing to warn about
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    lab = noisy_lab(quiet, ["9.9"], noisy_config(budget="{experiments: 1}", loop="keep: sigma"))
    assert cli.main(["run", "--repo", str(lab.root), "--dry-run"]) == 0
    quiet_printed = capsys.readouterr()
    assert "spread" not in quiet_printed.err and "spread" not in quiet_printed.out


@pytest.mark.unit
def test_baseline_advice_names_what_to_change() -> None:
    from arl_bot.noise import baseline_advice

    assert baseline_advice("mean", 4, 0.5, 1.0) is None  # the noise is below the gains asked for
    assert baseline_advice("welch", 8, 5.0, 0.0) is None
    once = baseline_advice("mean", 1, None, 0.0)
    assert once is not None and "measured 1 time," in once and "baseline_repeats: 2" in once
    noisy = baseline_advice("mean", 4, 0.3, 0.1)
    assert noisy is not None and "σ 0.3 over 4 runs" in noisy and "above 0.6" in noisy
