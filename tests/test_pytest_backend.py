"""The pytest backend: pass rate as the metric, one sample per test, on a real suite."""

from __future__ import annotations

import textwrap
from pathlib import Path

from arl_bot import diagnose
from arl_bot.loop import RunOptions, Session

from tests.labs import PY, make_lab

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TESTS = textwrap.dedent("""\
    import pytest
    from model.calc import add, mul

    def test_add():
        assert add(2, 3) == 5, "add is wrong"

    def test_mul():
        assert mul(2, 3) == 6

    @pytest.mark.skip(reason="not yet")
    def test_later():
        pass
    """)
# The agent: experiment 1 fixes add, experiment 2 breaks mul as well.
AGENT = textwrap.dedent("""\
    import os
    from pathlib import Path
    n = int(os.environ["AUTORESEARCH_EXPERIMENT"])
    text = Path("model/calc.py").read_text()
    text = text.replace("a - b", "a + b") if n == 1 else text.replace("a * b", "a ** b")
    Path("model/calc.py").write_text(text)
    Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text(f"edit {n}\\n")
    """)
CONFIG = textwrap.dedent(f"""\
    version: 1
    loops:
      demo:
        editable: ["model/**"]
        protected: ["tests/**", "agent.py"]
        metric: {{name: pass_rate, goal: maximize}}
        evaluate: {{backend: pytest, options: {{args: [tests/]}}, timeout: 60}}
        agent: {{kind: command, command: "{PY} agent.py", timeout: 30}}
        sandbox: none
        budget: {{experiments: 2}}
    """)


def test_pass_rate_and_per_test_samples(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["1"], config_text=CONFIG, files={
        "model/__init__.py": "", "model/calc.py": CALC, "tests/test_calc.py": TESTS, "agent.py": AGENT,
        "conftest.py": "",  # puts the repository root on sys.path for `import model`
    })
    record = Session(lab.repo, lab.config(), lab.loop(), RunOptions(dry_run=True)).run().record
    assert [(a.status, a.metric) for a in record.attempts] == [("baseline", 0.5), ("keep", 1.0), ("discard", 0.5)]
    baseline = diagnose.stored(record.attempts[0])
    assert [(s["id"], s["score"]) for s in baseline] == [("tests.test_calc::test_add", 0.0),
                                                         ("tests.test_calc::test_mul", 1.0)]
    assert "add is wrong" in baseline[0]["error"]
    assert diagnose.stored(record.attempts[2])[0]["id"] == "tests.test_calc::test_mul"
    assert not (lab.root / ".pytest_cache").exists()


def test_a_suite_that_collects_nothing_is_a_crash(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, ["1"], config_text=CONFIG, files={"tests/test_none.py": "", "agent.py": AGENT})
    from arl_bot.evaluate import get_evaluator
    from arl_bot.sandbox import get_sandbox

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = get_evaluator(lab.loop(), get_sandbox("none")).evaluate(lab.root, 1, scratch)
    assert result.metric is None and result.error == "pytest: no tests were collected"
