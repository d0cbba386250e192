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


# -- lanes ---------------------------------------------------------------------------------------
# unit: in-process only (the fast lane, `pytest -m unit`); integration: real processes, git,
# bubblewrap, loopback servers (the default for a test that says nothing); external: needs a tool
# from outside the Python environment (the Claude Code CLI, Chromium, node, torch, a Docker engine).
LANES = ("unit", "integration", "external")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that names no lane is an integration test: new tests never slow the fast lane by accident."""
    for item in items:
        if not any(item.get_closest_marker(lane) for lane in LANES):
            item.add_marker(pytest.mark.integration)


class _ProcessInUnitTest(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the fast lane honest: a test marked unit that starts a child process fails and says so."""
    if request.node.get_closest_marker("unit") is None:
        return
    import subprocess

    def refuse(*args: object, **kwargs: object) -> None:
        argv = args[1] if len(args) > 1 else kwargs.get("args")
        raise _ProcessInUnitTest(f"a unit test started a process ({argv!r}): mark it "
                                 "@pytest.mark.integration (tests/conftest.py says what each lane is)")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
