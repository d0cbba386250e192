"""The optuna agent: a real loop over an objective with a known optimum, resumed from the record elsewhere."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from arl_bot import config
from arl_bot.agents.optuna_agent import EXTRA_KEY, Feedback, feedback
from arl_bot.errors import ConfigError
from arl_bot.loop import RunOptions, Session
from arl_bot.record import Attempt
from arl_bot.searchspace import Param

from tests.labs import Lab, git, make_lab, value_config

# Known optimum: x = 1.5, y = 3, act = gelu gives 0. The baseline (x 0, y 8, relu) scores 5.25.
# x above 4 crashes the evaluation, so the study also learns from crashes.
OBJECTIVE = textwrap.dedent("""\
    import json, sys
    p = json.load(open("model/params.json"))
    if p["x"] > 4:
        sys.exit(3)
    score = (p["x"] - 1.5) ** 2 + 0.1 * (p["y"] - 3) ** 2 + (0.0 if p["act"] == "gelu" else 0.5)
    print(f"score: {score}")
    """)
PARAMS = {"x": 0.0, "y": 8, "act": "relu", "note": "not searched: stays as it is"}
AGENT = ('{kind: optuna, params_file: model/params.json, startup_trials: 4, seed: 7, '
         'space: {x: {float: [-5, 5]}, y: {int: [0, 10]}, act: {choice: [relu, gelu, tanh]}}}')
BASELINE = 5.25


def optuna_lab(tmp_path: Path, experiments: int, *, remote: bool = False) -> Lab:
    """A lab whose metric is OBJECTIVE over model/params.json, searched by the optuna agent."""
    return make_lab(tmp_path, ["unused"], remote=remote, config_text=value_config(
        agent=AGENT, budget=f"{{experiments: {experiments}, crashes: 5}}"),
        files={"eval/run.py": OBJECTIVE, "model/params.json": json.dumps(PARAMS, indent=2) + "\n"})


def test_improves_on_the_baseline_and_a_fresh_clone_resumes_the_study(tmp_path: Path) -> None:
    lab = optuna_lab(tmp_path, 12, remote=True)
    first = Session(lab.repo, lab.config(), lab.loop(), RunOptions()).run()
    attempts = first.record.attempts
    assert attempts[0].metric == pytest.approx(BASELINE)
    assert first.record.best is not None and first.record.best.metric is not None
    assert first.record.best.metric < BASELINE / 2  # well on the way to 0 within 12 trials
    trials = [a for a in attempts if EXTRA_KEY in a.extra]
    assert len(trials) == 12
    # The first trial already knew the baseline (trial 0, fed back from the file's values).
    assert "fed back 1 trials from the record (1 complete)" in attempts[1].agent_log
    assert attempts[1].extra[EXTRA_KEY]["start"] == {"x": 0.0, "y": 8, "act": "relu"}
    # The kept commit's parameter file holds the trial's values, and the key nobody searches.
    best = first.record.best
    on_branch = json.loads(lab.git("show", f"{best.sha}:model/params.json"))
    assert on_branch == {**PARAMS, **best.extra[EXTRA_KEY]["params"]}
    assert best.description.startswith(f"optuna trial {best.extra[EXTRA_KEY]['trial']}: x=")

    # Another machine: a fresh clone of the remote, a new Session; the study comes back from the record.
    assert lab.remote is not None
    clone = Lab(tmp_path / "clone")
    git(tmp_path, "clone", "--quiet", str(lab.remote), str(clone.root))
    second = Session(clone.repo, clone.config(), clone.loop(), RunOptions(experiments=3)).run()
    resumed = second.attempts[0]
    complete = sum(1 for a in attempts if a.status in ("baseline", "keep", "discard"))
    pruned = sum(1 for a in attempts if a.status == "crash")
    counts = ", ".join(f"{n} {s}" for s, n in sorted({"complete": complete, "pruned": pruned}.items()) if n)
    assert f"fed back {len(attempts)} trials from the record ({counts})" in resumed.agent_log
    assert resumed.experiment == 13 and resumed.extra[EXTRA_KEY]["trial"] >= 13  # numbering goes on
    assert resumed.extra[EXTRA_KEY]["params"] not in [a.extra[EXTRA_KEY]["params"] for a in trials]
    assert len(second.record.attempts) == 16


@pytest.mark.unit
def test_feedback_maps_statuses_and_skips_what_no_longer_fits() -> None:
    space = {"x": Param.model_validate({"float": [0, 1]}), "act": Param.model_validate({"choice": ["a", "b"]})}

    def tried(n: int, status: str, metric: float | None, params: dict[str, object], sha: str | None = None,
              start: dict[str, object] | None = None) -> Attempt:
        return Attempt(experiment=n, status=status, metric=metric, description="", parent="base",  # type: ignore[arg-type]
                       sha=sha, extra={EXTRA_KEY: {"params": params, **({"start": start} if start else {})}})

    history = (
        Attempt(experiment=0, status="baseline", metric=9.0, description="baseline", parent="base", sha="base"),
        tried(1, "keep", 5.0, {"x": 0.5, "act": "a"}, sha="k1", start={"x": 0.1, "act": "b"}),
        tried(2, "discard", 6.0, {"x": 0.7, "act": "b"}),
        tried(3, "crash", None, {"x": 0.9, "act": "a"}),
        tried(4, "invalid", None, {"x": 0.2, "act": "a"}),
        tried(5, "discard", 7.0, {"x": 3.0, "act": "a"}),  # x outside today's space: skipped
        tried(6, "discard", 7.0, {"x": 0.3, "act": "a", "gone": 1}),  # a key dropped from the space: ignored
    )
    trials, skipped = feedback(history, space, parent="k1", current={"x": 0.5, "act": "a"})
    assert skipped == 1
    assert trials == [
        Feedback("complete", 5.0, {"x": 0.5, "act": "a"}),
        Feedback("complete", 6.0, {"x": 0.7, "act": "b"}),
        Feedback("pruned", None, {"x": 0.9, "act": "a"}),
        Feedback("failed", None, {"x": 0.2, "act": "a"}),
        Feedback("complete", 7.0, {"x": 0.3, "act": "a"}),
        Feedback("complete", 9.0, {"x": 0.1, "act": "b"}),  # the baseline, from what trial 1 started from
    ]


def test_a_toml_file_with_nested_keys_keeps_its_comments(tmp_path: Path) -> None:
    objective = textwrap.dedent("""\
        import tomllib
        p = tomllib.load(open("model/params.toml", "rb"))
        print(f"score: {(p['opt']['lr'] - 0.01) ** 2 * 1e4 + p['opt']['layers']}")
        """)
    agent = ('{kind: optuna, params_file: model/params.toml, sampler: random, '
             'space: {opt.lr: {float: [1e-4, 1e-1], log: true}, opt.layers: {int: [1, 8], step: 1}}}')
    toml = "# tuned by the bot\n[opt]\nlr = 0.1  # learning rate\nlayers = 8\n\n[data]\npath = \"x.csv\"\n"
    lab = make_lab(tmp_path, ["unused"], config_text=value_config(agent=agent, budget="{experiments: 3}"),
                   files={"eval/run.py": objective, "model/params.toml": toml})
    summary = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True)).run()
    assert summary.record.attempts[0].status == "baseline"
    assert all(EXTRA_KEY in a.extra for a in summary.record.attempts[1:])
    assert "keep" in [a.status for a in summary.record.attempts]
    best = summary.record.best
    assert best is not None and best.sha is not None
    text = lab.git("show", f"{best.sha}:model/params.toml")
    assert "# tuned by the bot" in text and "# learning rate" in text and 'path = "x.csv"' in text
    assert f"layers = {best.extra[EXTRA_KEY]['params']['opt.layers']}" in text


@pytest.mark.parametrize(("space", "says"), [
    ("{lr: {float: [0.1, 0.01]}}", "loops.demo.agent.space.lr: the range needs low < high"),
    ("{lr: {float: [0, 1], log: true}}", "loops.demo.agent.space.lr: `log: true` needs low > 0"),
    ("{lr: {flaot: [0, 1]}}", "loops.demo.agent.space.lr.flaot: unknown key 'flaot'"),
    ("{lr: {}}", "loops.demo.agent.space.lr: give exactly one of"),
    ("{act: {choice: [a, a]}}", "loops.demo.agent.space.act: `choice` lists a value twice"),
    ("{n: {int: [1, 9], step: 0.5}}", "loops.demo.agent.space.n: an int range needs a whole `step`"),
    ("{}", "loops.demo.agent: agent kind `optuna` needs `space:`"),
])
@pytest.mark.unit
def test_space_errors_name_the_key_and_line(space: str, says: str) -> None:
    text = value_config(agent=f"{{kind: optuna, params_file: model/params.json, space: {space}}}")
    with pytest.raises(ConfigError) as caught:
        config.parse(text)
    assert says in str(caught.value)
    assert caught.value.line is not None


@pytest.mark.unit
def test_the_params_file_must_be_editable() -> None:
    text = value_config(agent="{kind: optuna, params_file: eval/p.json, space: {a: {int: [1, 2]}}}")
    with pytest.raises(ConfigError, match=r"params_file 'eval/p\.json' must match `editable`"):
        config.parse(text)


@pytest.mark.unit
def test_yaml_exponent_without_a_dot_is_read_as_a_number() -> None:
    loop = config.parse(value_config(
        agent="{kind: optuna, params_file: model/p.yaml, space: {lr: {float: [1e-4, 1e-1], log: true}}}")).loop(None)
    assert loop.agent.space["lr"].bounds == (1e-4, 1e-1)


def test_a_misspelt_space_key_is_refused_by_name_and_never_written(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from arl_bot.cli import main

    typo = AGENT.replace("y: {int: [0, 10]}", "yy: {int: [0, 10]}")
    lab = make_lab(tmp_path, ["unused"], config_text=value_config(agent=typo, budget="{experiments: 2}"),
                   files={"eval/run.py": OBJECTIVE, "model/params.json": json.dumps(PARAMS, indent=2) + "\n"})
    assert main(["run", "--repo", str(lab.root), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "agent.space key 'yy' is not in model/params.json" in err and "the file has x, y, act, note" in err
    from arl_bot.store import RecordStore

    record = RecordStore(lab.repo, "demo").load()
    assert record is not None and [a.status for a in record.attempts] == ["baseline"]
    assert record.stop_reason is not None and "agent.space key 'yy' is not in model/params.json" in record.stop_reason
    on_branch = json.loads(lab.git("show", "autoresearch/demo:model/params.json"))
    assert on_branch == PARAMS  # no new key was added
