"""A lab whose evaluation adds planted, known noise to the true value in model/value.txt."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.labs import PY, Lab, make_lab

# The noise is Gaussian with sigma 1, fixed per (seed, true value): the same tree and seed always give
# the same score, as a seeded training run does, while different seeds and different trees differ.
EVAL_NOISY = textwrap.dedent("""\
    import random, sys, time
    from pathlib import Path
    args = sys.argv[1:]
    seed = args[args.index("--seed") + 1]
    if "--log" in args:
        with open(args[args.index("--log") + 1], "a") as log:
            log.write(f"{seed} {time.time()} start\\n")
    if "--sleep" in args:
        time.sleep(float(args[args.index("--sleep") + 1]))
    text = Path("model/value.txt").read_text().strip()
    value = float(text) + random.Random(f"{seed}:{text}").gauss(0.0, 1.0)
    if "--log" in args:
        with open(args[args.index("--log") + 1], "a") as log:
            log.write(f"{seed} {time.time()} end\\n")
    print(f"score: {value}")
    """)

# The holdout gets worse when the validation value goes below 8: a change that overfits.
EVAL_HOLDOUT = textwrap.dedent("""\
    from pathlib import Path
    value = float(Path("model/value.txt").read_text().strip())
    print(f"score: {value if value >= 8 else 16 - value}")
    """)


def noisy_config(*, seeds: str = "[1, 2, 3, 4]", evaluate: str = "", loop: str = "", budget: str = "{experiments: 5}",
                 command: str = f"{PY} eval/run.py --seed {{seed}}") -> str:
    """The lab's config; evaluate and loop are extra YAML lines (any depth) for those sections."""
    template = textwrap.dedent(f"""\
        version: 1
        loops:
          demo:
            editable: ["model/**"]
            protected: ["eval/**", "agent.py", "values.txt"]
            metric: {{name: score, goal: minimize}}
            evaluate:
              command: "{command}"
              timeout: 20
              seeds: {seeds}
        @EVALUATE@
            agent: {{kind: command, command: "{PY} agent.py values.txt", timeout: 30}}
            sandbox: none
            budget: {budget}
        @LOOP@
        """)
    return (template.replace("@EVALUATE@", textwrap.indent(evaluate, " " * 6))
            .replace("@LOOP@", textwrap.indent(loop, " " * 4)))


def noisy_lab(tmp_path: Path, values: list[str], config: str, files: dict[str, str] | None = None) -> Lab:
    """A committed lab with the noisy evaluation and the value-writing agent."""
    return make_lab(tmp_path, values, config_text=config,
                    files={"eval/run.py": EVAL_NOISY, "eval/holdout.py": EVAL_HOLDOUT, **(files or {})})
