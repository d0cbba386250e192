"""The Action pushes over smart HTTP with its token, passed to git per process and never written down."""

from __future__ import annotations

from pathlib import Path

import pytest
from arl_bot.git import config_env
from arl_bot.github.gitauth import token_header

from tests.action_world import world
from tests.github_standin.git_http import GitHttpServer
from tests.webhooks import payload, run_action


def test_dispatch_pushes_over_http_with_the_token_and_leaves_no_credentials(tmp_path: Path) -> None:
    with world(tmp_path) as w, GitHttpServer(tmp_path, w.github.token) as server:
        assert w.lab.remote is not None
        w.lab.git("remote", "set-url", "origin", f"{server.url}/{w.lab.remote.name}")
        data = payload("workflow_dispatch")
        data["inputs"] = {"loop": "demo", "experiments": "2"}
        result = run_action(tmp_path, w.github, w.lab.root, "workflow_dispatch", data,
                            GITHUB_SERVER_URL=server.url)
        assert result.code == 0, result.stderr + result.stdout
        assert w.remote_log()[0] == "set value to 8"  # landed in the bare repository, through HTTP
        assert any(path.endswith("/git-receive-pack") and status == 200 for _, path, status in server.requests)
        assert w.github.pull(1)["head_ref"] == "autoresearch/demo"
        config = (w.lab.root / ".git" / "config").read_text()
        assert w.github.token not in config and "extraheader" not in config


def test_a_wrong_token_fails_the_run_loudly(tmp_path: Path) -> None:
    with world(tmp_path) as w, GitHttpServer(tmp_path, "the-real-token") as server:
        assert w.lab.remote is not None
        w.lab.git("remote", "set-url", "origin", f"{server.url}/{w.lab.remote.name}")
        data = payload("workflow_dispatch")
        data["inputs"] = {"loop": "", "experiments": "1"}
        result = run_action(tmp_path, w.github, w.lab.root, "workflow_dispatch", data,
                            GITHUB_SERVER_URL=server.url)
        assert result.code != 0
        assert "::error title=arl-bot::" in result.stdout
        assert w.github.token not in result.stdout + result.stderr
        assert any(status == 401 for _, _, status in server.requests)


@pytest.mark.unit
def test_the_token_goes_after_any_git_config_already_in_the_environment() -> None:
    key, value = token_header("https://github.com", "t0ken")
    added = config_env([(key, value)], {"GIT_CONFIG_COUNT": "2"})
    assert added["GIT_CONFIG_COUNT"] == "3" and added["GIT_CONFIG_KEY_2"] == "http.https://github.com/.extraheader"
    value = added["GIT_CONFIG_VALUE_2"]
    assert value.startswith("AUTHORIZATION: basic ") and "t0ken" not in value
