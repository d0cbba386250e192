"""What a non-editable install ships: every package under bot/ and backends/ is listed in pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _packages_on_disk() -> set[str]:
    found = set()
    for folder, name in SETUPTOOLS["package-dir"].items():
        base = ROOT / name
        for init in base.rglob("__init__.py"):
            parts = init.parent.relative_to(base).parts
            if "templates" in parts or "__pycache__" in parts:  # starter labs: data, shipped as package-data
                continue
            found.add(".".join((folder, *parts)))
    return found


@pytest.mark.unit
def test_every_package_is_listed_for_the_wheel() -> None:
    # An editable install finds any folder, so every other test passes; a wheel holds only the listed packages,
    # and `pip install arl-bot` would then fail on its first import of the missing one (bot/config/ became one).
    missing = sorted(_packages_on_disk() - set(SETUPTOOLS["packages"]))
    assert missing == [], f"add {missing} to [tool.setuptools] packages in pyproject.toml"
