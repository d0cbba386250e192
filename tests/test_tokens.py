"""GitHub App credentials: installation tokens minted and re-minted for the API and git, so a run outlives any token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from arl_bot.github.client import GitHub, GitHubError, Retry, app_minter
from arl_bot.github.tokens import AppTokens, FixedToken

from tests.action_world import world
from tests.github_standin import GitHubStandIn
from tests.github_standin.apps import APP_ID, app_key
from tests.github_standin.git_http import GitHttpServer
from tests.labs import PY, value_config
from tests.webhooks import payload, run_action

FAST = Retry(total=2, backoff=0.01, timeout=5.0, between_requests=0, between_writes=0)
@pytest.fixture
def standin() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as server:
        server.add_app(APP_ID, app_key()[1])
        yield server


def app_client(standin: GitHubStandIn) -> tuple[GitHub, AppTokens]:
    tokens = AppTokens(app_minter(standin.full_name, str(APP_ID), app_key()[0], standin.url, FAST))
    return GitHub(standin.full_name, tokens, standin.url, FAST, refresh=tokens.invalidate), tokens


def test_an_app_token_that_dies_early_is_minted_again_and_the_call_goes_through(standin: GitHubStandIn) -> None:
    number = standin.add_pull("autoresearch/x")
    gh, tokens = app_client(standin)
    gh.set_pull_body(number, "first")
    assert standin.mints == 1 and tokens.mints == 1
    standin.expire_tokens()  # revoked, or a clock that jumped: GitHub answers 401 Bad credentials
    gh.set_pull_body(number, "after the token died")
    assert standin.pull(number)["body"] == "after the token died"
    assert standin.mints == 2
    statuses = [(e.operation, e.status, e.auth) for e in standin.requests if e.method == "PATCH"]
    assert [s for _, s, _ in statuses] == [200, 401, 200] and statuses[-1][2] == "installation"


def test_an_app_token_is_renewed_ten_minutes_before_its_hour_is_up() -> None:
    now, minted = [1000.0], []

    def mint() -> tuple[str, float]:
        minted.append(f"t{len(minted)}")
        return minted[-1], now[0] + 3600

    tokens = AppTokens(mint, clock=lambda: now[0])
    assert tokens() == "t0" and tokens() == "t0"
    now[0] += 2999
    assert tokens() == "t0"
    now[0] += 1  # ten minutes left: a fresh one, so no request ever carries a token about to die
    assert tokens() == "t1" and tokens.mints == 2 and tokens.issued == ("t0", "t1")
    assert tokens.invalidate() and tokens() == "t2"


def test_fixed_github_token_401_says_how_long_tokens_live_and_what_to_do(standin: GitHubStandIn) -> None:
    number = standin.add_pull("autoresearch/x")
    gh = GitHub(standin.full_name, FixedToken(standin.token), standin.url, FAST, refresh=FixedToken("").invalidate)
    standin.expire_tokens()
    with pytest.raises(GitHubError, match="401") as caught:
        gh.set_pull_body(number, "too late")
    assert "24 hours" in str(caught.value) and "App" in str(caught.value)


def test_a_wrong_app_key_or_id_fails_with_what_to_pass(standin: GitHubStandIn) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(GitHubError, match="401") as caught:
        app_minter(standin.full_name, str(APP_ID), other, standin.url, FAST)()
    assert "ARL_GITHUB_APP_PRIVATE_KEY" in str(caught.value)
    with pytest.raises(Exception, match="ARL_GITHUB_APP_PRIVATE_KEY"):
        app_minter(standin.full_name, str(APP_ID), "not a key", standin.url, FAST)()


def test_a_run_longer_than_its_tokens_keeps_pushing_and_updating_with_app_credentials(tmp_path: Path) -> None:
    # Each experiment takes longer than half a token's life: without re-minting, the second push would be a 401.
    slow = f'{{kind: command, command: "sleep 2.5; {PY} agent.py values.txt", timeout: 30}}'
    with world(tmp_path, config_text=value_config(agent=slow)) as w, \
            GitHttpServer(tmp_path, lambda token: w.github.valid(token) is not None) as server:
        assert w.lab.remote is not None
        w.github.add_app(APP_ID, app_key()[1])
        w.github.token_lifetime_s = 4.0
        w.lab.git("remote", "set-url", "origin", f"{server.url}/{w.lab.remote.name}")
        data = payload("workflow_dispatch")
        data["inputs"] = {"loop": "demo", "experiments": "3"}
        result = run_action(tmp_path, w.github, w.lab.root, "workflow_dispatch", data, GITHUB_SERVER_URL=server.url,
                            GITHUB_TOKEN="", ARL_GITHUB_APP_ID=str(APP_ID), ARL_GITHUB_APP_PRIVATE_KEY=app_key()[0])
        assert result.code == 0, result.stdout + result.stderr
        w.lab.git("remote", "set-url", "origin", str(w.lab.remote))  # the test reads the remote directly
        record = w.record()
        assert record is not None and [a.experiment for a in record.attempts] == [0, 1, 2, 3]
        assert w.remote_log()[0] == "set value to 5"  # pushed through HTTP with the App's tokens
        assert "3 tried" in w.pr_body()
        assert w.github.mints >= 2  # the run outlived the first token
        assert all(status != 401 for _, _, status in server.requests)  # renewed before expiry, never after
        assert all(e.status != 401 and e.auth in ("installation", "app") for e in w.github.requests)
        for token in w.github.tokens:
            assert token not in result.stdout + result.stderr
        assert app_key()[0].splitlines()[1] not in result.stdout + result.stderr


def test_an_app_token_may_open_pull_requests_where_github_token_may_not(standin: GitHubStandIn) -> None:
    standin.actions_may_open_pulls = False  # the repository setting binds GitHub Actions' token only
    gh, _ = app_client(standin)
    assert gh.create_pull(head="autoresearch/x", base="main", title="x", body="b").number == 1
    fixed = GitHub(standin.full_name, standin.token, standin.url, FAST)
    with pytest.raises(GitHubError, match="403") as caught:
        fixed.create_pull(head="autoresearch/y", base="main", title="y", body="b")
    assert "Settings → Actions → General → Workflow permissions" in str(caught.value)
