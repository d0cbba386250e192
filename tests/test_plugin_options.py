"""Plugins own their options: checked when the config loads (file:line:key) and shown by `arl-bot schema`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
from arl_bot import config
from arl_bot.agents import get_agent
from arl_bot.cli import main
from arl_bot.errors import ConfigError
from arl_bot.evaluate import get_evaluator
from arl_bot.sandbox import choose_sandbox, get_sandbox

# A third-party package, as `pip install` would leave it: a module and an entry_points.txt.
PLUGIN = textwrap.dedent("""\
    from typing import Literal

    from pydantic import Field

    from arl_bot.agents import Agent, AgentResult
    from arl_bot.config import AgentConfig, PluginOptions, SandboxSettings
    from arl_bot.evaluate import Evaluator, SeedResult
    from arl_bot.sandbox.none import NoSandbox


    class EchoOptions(AgentConfig):
        temperature: float = Field(default=0.5, ge=0, le=2)
        style: Literal["terse", "chatty"] = "terse"


    class EchoAgent(Agent):
        Options = EchoOptions

        def propose(self, task):
            return AgentResult(f"{self.config.style} at {self.config.temperature}")


    class ScaleOptions(PluginOptions):
        scale: float = Field(gt=0)


    class ScaleEvaluator(Evaluator):
        Options = ScaleOptions

        def evaluate(self, tree, seed, scratch):
            return SeedResult(seed, self.options.scale, "", "", 0.0)


    class JailOptions(SandboxSettings):
        cell: str = "a"


    class JailSandbox(NoSandbox):
        name = "jail"
        Options = JailOptions


    class PlainSandbox(NoSandbox):  # declares no Options: it takes the keys every sandbox takes
        name = "plain"
    """)

ENTRY_POINTS = """\
[arl_bot.agents]
echo = thirdparty_opts:EchoAgent

[arl_bot.evaluators]
scale = thirdparty_opts:ScaleEvaluator

[arl_bot.sandboxes]
jail = thirdparty_opts:JailSandbox
"""

CONFIG = textwrap.dedent("""\
    version: 1
    loops:
      demo:
        editable: ["model/**"]
        metric: {name: score}
        evaluate:
          backend: scale
          options: {scale: 3}
        agent:
          kind: echo
          temperature: 1.5
          style: chatty
        sandbox:
          kind: jail
          cell: b
    """)


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The throwaway plugin package on sys.path for this test only."""
    site = tmp_path / "site"
    info = site / "thirdparty_opts-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-opts\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "thirdparty_opts.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))


def error_for(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config.parse(text, "lab/.autoresearch.yml")
    return info.value


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.usefixtures("installed")
def test_a_third_party_plugins_options_are_its_own_model_and_reach_it() -> None:
    loop = config.parse(CONFIG).loop(None)
    assert type(loop.agent).__name__ == "EchoOptions" and loop.agent.model_dump()["temperature"] == 1.5
    sandbox = choose_sandbox(loop)
    assert type(sandbox.settings).__name__ == "JailOptions" and sandbox.settings.model_dump()["cell"] == "b"
    agent = get_agent(loop, sandbox)
    assert agent.propose(None).description == "chatty at 1.5"  # type: ignore[arg-type]  # it reads no task
    assert get_evaluator(loop, sandbox).evaluate(Path("."), 1, Path(".")).metric == 3.0


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(("old", "new", "key", "message", "hint"), [
    ("style: chatty", "styel: chatty", "loops.demo.agent.styel", "unknown key 'styel'", "style, temperature"),
    ("temperature: 1.5", "temperature: 9", "loops.demo.agent.temperature",
     "Input should be less than or equal to 2", None),
    ("options: {scale: 3}", "options: {scael: 3}", "loops.demo.evaluate.options.scael", "unknown key 'scael'",
     "known keys here: scale"),
    ("options: {scale: 3}", "options: {}", "loops.demo.evaluate.options.scale", "missing required key 'scale'",
     None),
    ("cell: b", "cel: b", "loops.demo.sandbox.cel", "unknown key 'cel'", "cell"),
])
def test_a_third_party_plugins_bad_option_names_file_line_and_key(
        old: str, new: str, key: str, message: str, hint: str | None) -> None:
    text = CONFIG.replace(old, new)
    err = error_for(text)
    assert err.key == key and err.line == line_of(text, new.split(":")[0].split("{")[-1])
    assert str(err).startswith(f"lab/.autoresearch.yml:{err.line}: {key}: {message}")
    if hint is not None:
        assert hint in str(err)


@pytest.mark.usefixtures("installed")
def test_the_schema_carries_a_third_party_plugins_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"EchoOptions", "ScaleOptions", "JailOptions"} <= set(schema["$defs"])
    good = config_data(CONFIG)
    jsonschema.validate(good, schema)
    for old, new in (("style: chatty", "style: wordy"), ("options: {scale: 3}", "options: {scael: 3}"),
                     ("cell: b", "cel: b"), ("temperature: 1.5", "temprature: 1.5")):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(config_data(CONFIG.replace(old, new)), schema)


def config_data(text: str) -> object:
    import yaml

    return yaml.safe_load(text)


def test_the_schema_checks_the_builtin_plugins_keys_by_kind() -> None:
    schema = config.json_schema()
    readme = textwrap.dedent("""\
        version: 1
        loops:
          demo:
            editable: ["model/**"]
            metric: {name: score}
            evaluate: {backend: torch-charlm, options: {time_budget: 20, device: auto}}
            agent: {kind: claude-code, model: claude-sonnet-4-6, timeout: 1800, args: [--max-budget-usd, "2"]}
            sandbox: {kind: docker, image: my-cuda-image:latest, gpus: all}
        """)
    jsonschema.validate(config_data(readme), schema)
    config.parse(readme)  # the loader agrees
    for old, new in (("model: claude", "max_tokens: 9, model: claude"),  # anthropic's key, not claude-code's
                     ("device: auto", "devise: auto"), ("gpus: all", "gpu: all")):
        text = readme.replace(old, new)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(config_data(text), schema)
        with pytest.raises(ConfigError):
            config.parse(text)


ANTHROPIC = textwrap.dedent("""\
    version: 1
    loops:
      demo:
        editable: ["model/**"]
        metric: {name: score}
        evaluate: {command: "true"}
        agent:
          kind: anthropic
          options: {max_retries: 6}
    """)


def test_the_anthropic_retries_are_checked_when_the_config_loads() -> None:
    # Before, `int(options.get("max_retries"))` ran inside the first model call: a traceback mid-run.
    assert config.parse(ANTHROPIC).loop(None).agent.options.max_retries == 6  # type: ignore[attr-defined]
    err = error_for(ANTHROPIC.replace("max_retries: 6", "max_retries: six"))
    assert err.key == "loops.demo.agent.options.max_retries" and err.line == 9
    err = error_for(ANTHROPIC.replace("max_retries: 6", "max_retires: 6"))
    assert err.key == "loops.demo.agent.options.max_retires" and "known keys here: max_retries" in str(err)


def test_a_key_of_another_kind_is_refused_and_the_hint_lists_this_kinds_keys() -> None:
    text = ANTHROPIC.replace("options: {max_retries: 6}", "params_file: p.json")  # optuna's key
    err = error_for(text)
    assert err.key == "loops.demo.agent.params_file" and err.line == 9
    assert "max_tokens" in str(err) and "space" not in str(err)


def test_a_typo_under_sandbox_agent_lists_the_sandbox_phase_keys() -> None:
    # The name-keyed table took `agent` for the agent section and listed its keys (kind, timeout, ...).
    text = ANTHROPIC + "    sandbox: {agent: {memroy_mb: 512}}\n"
    err = error_for(text)
    assert err.key == "loops.demo.sandbox.agent.memroy_mb" and err.line == 10
    hint = str(err).split("hint: ", 1)[1]
    assert "memory_mb" in hint and "network" in hint and "timeout" not in hint and "kind" not in hint


def test_a_module_class_agents_options_are_checked_when_it_loads(tmp_path: Path) -> None:
    (tmp_path / "late_agent.py").write_text(PLUGIN.replace("EchoAgent(Agent)", "LateAgent(Agent)"))
    text = CONFIG.replace("kind: echo", f"kind: {tmp_path / 'late_agent.py'}:LateAgent").replace(
        "style: chatty", "styel: chatty").replace("backend: scale\n      options: {scale: 3}", "command: 'true'")
    text = text.replace("    sandbox:\n      kind: jail\n      cell: b\n", "    sandbox: none\n")
    loop = config.parse(text).loop(None)  # a reference is imported when the run starts, not to read a config
    with pytest.raises(ConfigError) as info:
        get_agent(loop, get_sandbox("none"))
    assert info.value.key == "loops.demo.agent.styel" and "unknown key 'styel'" in str(info.value)
    assert "style, temperature" in str(info.value)


HEAVY_PROBE = """\
import sys
from arl_bot import config
loops = [("a", "torch-charlm", "{kind: anthropic}"), ("b", "torch-digits", "{kind: claude-code}"),
         ("c", "pytest", "{kind: optuna, params_file: model/p.json, space: {lr: {float: [0.1, 1]}}}"),
         ("d", "python, options: {class: 'x.py:B'}", "{kind: command, command: 'true'}")]
text = "version: 1\\nloops:\\n" + "".join(
    f"  {name}:\\n    editable: [model/**]\\n    metric: {{name: score}}\\n"
    f"    evaluate: {{backend: {backend}}}\\n    agent: {agent}\\n    sandbox: docker\\n"
    for name, backend, agent in loops)
assert len(config.parse(text).loops) == 4
config.json_schema()
print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'anthropic', 'optuna', 'docker'}))
"""


def test_a_module_class_sandboxs_keys_are_checked_when_it_loads(tmp_path: Path) -> None:
    (tmp_path / "late_sandbox.py").write_text(PLUGIN)
    reference = f"{tmp_path / 'late_sandbox.py'}"
    for kind, key in ((f"{reference}:JailSandbox", "cel"), (f"{reference}:PlainSandbox", "cell")):
        text = ANTHROPIC + f"    sandbox: {{kind: '{kind}', {key}: b}}\n"
        loop = config.parse(text).loop(None)  # not imported to read the file
        with pytest.raises(ConfigError) as info:
            choose_sandbox(loop)
        assert info.value.key == f"sandbox.{key}" and f"unknown key {key!r}" in str(info.value)
    good = config.parse(ANTHROPIC + f"    sandbox: {{kind: '{reference}:JailSandbox', cell: b}}\n").loop(None)
    assert choose_sandbox(good).settings.model_dump()["cell"] == "b"


def test_reading_a_config_imports_no_heavy_library() -> None:
    # Every built-in plugin module is imported to read its Options: none may pull torch, anthropic, optuna
    # or docker in at the top, or reading a config would take seconds and need every extra installed.
    run = subprocess.run([sys.executable, "-c", HEAVY_PROBE], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
