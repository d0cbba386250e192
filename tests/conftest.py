"""Shared fixtures: real git labs in tmp_path."""

from __future__ import annotations

import os

import pytest

# Tests must never reach a real GitHub or Anthropic, nor read the developer's git identity.
for _var in ("GITHUB_TOKEN", "ANTHROPIC_API_KEY", "GH_TOKEN"):
    os.environ.pop(_var, None)


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "tester")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tester@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "tester")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tester@example.com")
