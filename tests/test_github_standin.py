"""The GitHub stand-in answers as GitHub's OpenAPI description says, and the client copes with its faults."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from arl_bot.github.client import GitHub, GitHubError, Retry

from tests.github_standin import GitHubStandIn, openapi

FAST = Retry(total=3, backoff=0.01, timeout=1.0, between_requests=0, between_writes=0)


@pytest.fixture
def standin() -> Iterator[GitHubStandIn]:
    with GitHubStandIn(per_page=2) as server:
        yield server


def client(standin: GitHubStandIn, retry: Retry = FAST) -> GitHub:
    return GitHub(standin.full_name, standin.token, standin.url, retry)


def exercise(standin: GitHubStandIn) -> None:
    """Call every endpoint arl-bot uses, through the real PyGithub client, and a few error paths."""
    gh = client(standin)
    standin.add_user("reader", role="read")
    standin.add_user("maintainer", role="maintain")
    issue = standin.add_issue("an issue")
    fork = standin.add_pull("feature", fork="someone/Hello-World")
    for loop in ("a", "b", "c"):
        standin.add_pull(f"autoresearch/{loop}", title=loop)
    assert gh.role("reader") == "read" and gh.role("maintainer") == "maintain" and gh.role("ghost") == "none"
    assert len(gh.pulls()) == 4  # paginated: two per page
    assert [p.head_ref for p in gh.pulls(head_ref="autoresearch/b")] == ["autoresearch/b"]
    assert gh.pull(fork).head_repo == "someone/Hello-World"
    opened = gh.create_pull(head="autoresearch/d", base="main", title="d", body="hello")
    assert opened.draft
    with pytest.raises(GitHubError, match="already exists"):
        gh.create_pull(head="autoresearch/d", base="main", title="d", body="again")
    gh.set_pull_body(opened.number, "updated")
    # GitHub's refusals of a new pull request: the Actions setting (403) and no drafts in this repository (422).
    standin.actions_may_open_pulls = False
    with pytest.raises(GitHubError, match="Allow GitHub Actions to create and approve pull requests"):
        gh.create_pull(head="autoresearch/e", base="main", title="e", body="x")
    standin.actions_may_open_pulls, standin.drafts_supported = True, False
    with pytest.raises(GitHubError, match="Draft pull requests are not supported"):
        gh.create_pull(head="autoresearch/e", base="main", title="e", body="x", draft=True)
    standin.drafts_supported = True
    with pytest.raises(GitHubError, match="65536"):
        gh.set_pull_body(opened.number, "x" * 70_000)
    cid = gh.comment(issue, "on an issue")
    gh.react(cid, "eyes")
    gh.react(cid, "eyes")  # GitHub answers 200 with the existing reaction
    gh.edit_comment(cid, "edited")
    assert [c.body for c in gh.comments(issue)] == ["edited"]
    with pytest.raises(GitHubError, match="404"):
        gh.pull(issue)
    from github import Auth, Github

    raw = Github(auth=Auth.Token(standin.token), base_url=standin.url, lazy=True)
    repo = raw.get_repo(standin.full_name)
    assert repo.default_branch == "main"
    assert repo.get_issue(issue).get_comment(cid).body == "edited"
    assert raw.get_user("reader").login == "reader"
    assert raw.get_rate_limit().resources.core.limit == 5000
    # A GitHub App: its installation on the repository, a token minted with a JWT, used like any other.
    from arl_bot.github.client import app_minter

    from tests.github_standin.apps import APP_ID, app_key

    standin.add_app(APP_ID, app_key()[1])
    token, _ = app_minter(standin.full_name, str(APP_ID), app_key()[0], standin.url, FAST)()
    GitHub(standin.full_name, token, standin.url, FAST).dispatch("autoresearch.yml", "main", {"loop": "a"})
    assert standin.dispatches() == [{"workflow": "autoresearch.yml", "ref": "main", "inputs": {"loop": "a"},
                                     "by": "installation"}]


def test_every_answer_follows_githubs_openapi_description(standin: GitHubStandIn) -> None:
    exercise(standin)
    served = {(e.method, e.operation) for e in standin.requests}
    routes = {(verb, op) for verb, _, op, _ in standin._routes}
    assert routes <= served, f"not exercised: {routes - served}"
    problems = []
    for exchange in standin.requests:
        assert exchange.operation, f"{exchange.method} {exchange.path} is not a route of the stand-in"
        for error in openapi.errors(exchange.operation, exchange.method, exchange.status, exchange.body):
            problems.append(f"{exchange.method} {exchange.operation} {exchange.status}: {error}")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.unit
def test_the_conformance_check_catches_a_drifted_answer() -> None:
    good = {"id": 1, "node_id": "x", "user": None, "content": "eyes", "created_at": "2024-01-01T00:00:00Z"}
    operation = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"
    assert openapi.errors(operation, "POST", 201, good) == []
    drifted = {**good, "content": "thumbs"}
    del drifted["node_id"]
    problems = openapi.errors(operation, "POST", 201, drifted)
    assert any("node_id" in p for p in problems) and any("thumbs" in p for p in problems)
    with pytest.raises(KeyError, match="never answers 418"):
        openapi.errors(operation, "POST", 418, good)


def test_server_errors_are_retried_with_backoff(standin: GitHubStandIn) -> None:
    number = standin.add_pull("autoresearch/x")
    standin.inject("500", method="PATCH", times=2)
    client(standin).set_pull_body(number, "after two 500s")
    assert standin.pull(number)["body"] == "after two 500s"
    assert standin.count("PATCH") == 3


def test_a_secondary_rate_limit_waits_as_long_as_retry_after_says(standin: GitHubStandIn) -> None:
    number = standin.add_pull("autoresearch/x")
    standin.inject("secondary", method="POST", retry_after=1)
    started = time.monotonic()
    client(standin).comment(number, "after a secondary rate limit")
    assert time.monotonic() - started >= 1.0
    assert standin.replies(number) == ["after a secondary rate limit"]


def test_a_hung_connection_times_out_and_is_retried(standin: GitHubStandIn) -> None:
    standin.add_user("writer", role="write")
    standin.inject("hang", method="GET", path="permission", hang_s=10)
    started = time.monotonic()
    assert client(standin).role("writer") == "write"
    assert time.monotonic() - started < 5


def test_an_error_that_does_not_go_away_names_what_failed(standin: GitHubStandIn) -> None:
    number = standin.add_pull("autoresearch/x")
    standin.inject("500", method="PATCH", times=10)
    with pytest.raises(GitHubError, match=f"updating the body of pull request #{number}"):
        client(standin).set_pull_body(number, "never")


def test_a_bad_token_says_so(standin: GitHubStandIn) -> None:
    with pytest.raises(GitHubError, match="bad credentials"):
        GitHub(standin.full_name, "wrong", standin.url, FAST).role("Codertocat")
