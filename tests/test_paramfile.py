"""Parameter files: the searched values change, everything else in the file stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from arl_bot import paramfile
from arl_bot.paramfile import ParamFileError

pytestmark = pytest.mark.unit


def test_json_keeps_other_keys_order_and_indentation(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{\n    "lr": 0.1,\n    "model": {"depth": 2, "name": "tiny"},\n    "notes": "café"\n}\n')
    paramfile.write(path, {"lr": 0.003, "model.depth": 5})
    text = path.read_text()
    assert json.loads(text) == {"lr": 0.003, "model": {"depth": 5, "name": "tiny"}, "notes": "café"}
    assert text.startswith('{\n    "lr": 0.003,') and text.endswith("}\n") and "café" in text


def test_yaml_keeps_other_keys_in_order(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("act: relu\nopt:\n  lr: 0.1\n  betas: [0.9, 0.99]\nsteps: 100\n")
    paramfile.write(path, {"opt.lr": 0.01, "act": "gelu", "new.key": 3})
    data = yaml.safe_load(path.read_text())
    assert data == {"act": "gelu", "opt": {"lr": 0.01, "betas": [0.9, 0.99]}, "steps": 100, "new": {"key": 3}}
    assert list(data) == ["act", "opt", "steps", "new"]
    assert paramfile.lookup(paramfile.read(path), "opt.lr") == 0.01
    assert paramfile.lookup(data, "opt.missing") is None and paramfile.lookup(data, "act.x") is None


@pytest.mark.parametrize(("name", "text", "says"), [
    ("p.json", "{not json", "p.json is not valid JSON"),
    ("p.yaml", "a: [1, 2", "p.yaml is not valid YAML"),
    ("p.toml", "a = = 1", "p.toml is not valid TOML"),
    ("p.json", "[1, 2]", "must hold a mapping of names to values, not list"),
])
def test_broken_files_say_what_is_wrong(tmp_path: Path, name: str, text: str, says: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ParamFileError, match=says.replace("[", r"\[")):
        paramfile.read(path)


def test_a_missing_file_and_a_key_through_a_value_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ParamFileError, match="not found in the working tree"):
        paramfile.read(tmp_path / "gone.json")
    path = tmp_path / "p.json"
    path.write_text('{"lr": 0.1}')
    with pytest.raises(ParamFileError, match=r"'lr\.x' needs 'lr' to be a mapping"):
        paramfile.write(path, {"lr.x": 1})
    assert json.loads(path.read_text()) == {"lr": 0.1}  # nothing half-written
