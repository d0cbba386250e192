"""The GitHub adapter: the only module that imports PyGithub; a small typed facade over the REST API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from ..errors import ArlError

DEFAULT_API = "https://api.github.com"
T = TypeVar("T")


class GitHubError(ArlError):
    """A GitHub API call failed after its retries."""

    def __init__(self, what: str, status: int | None, detail: str, *, hint: str | None = None) -> None:
        code = f" (HTTP {status})" if status else ""
        super().__init__(f"GitHub API: {what} failed{code}: {detail}", hint=hint)
        self.status = status


@dataclass(frozen=True)
class Pull:
    """What the bot needs to know about a pull request."""

    number: int
    title: str
    body: str
    state: str
    draft: bool
    head_ref: str
    head_repo: str  # full name of the repository the head branch lives in ('' if it was deleted)
    base_ref: str
    html_url: str


@dataclass(frozen=True)
class Comment:
    """An issue or pull-request comment."""

    id: int
    body: str
    login: str
    user_type: str


@dataclass(frozen=True)
class Retry:
    """How hard to try: GitHub has bad minutes, and rate limits that say how long to wait."""

    total: int = 6
    backoff: float = 1.0  # seconds, doubled per retry
    secondary_wait: float = 60.0  # a secondary rate limit without Retry-After: GitHub asks for a minute
    max_wait: float = 900.0  # a primary rate limit that resets later than this fails instead of stalling the job
    timeout: float = 30.0  # per request; a hung connection counts as a failed try
    # GitHub asks integrations to pause between requests, a second between writes, to stay clear of
    # secondary rate limits; PyGithub paces by these. Experiments take minutes, so it costs nothing.
    between_requests: float = 0.25
    between_writes: float = 1.0


class GitHub:
    """One repository on GitHub (or GitHub Enterprise Server, or a test stand-in) through PyGithub.

    token is a string, or a callable asked before every request (GitHub App tokens that expire and are
    re-minted); refresh, when given, is called after a 401 and returns whether one more try may work.
    """

    def __init__(self, repo: str, token: str | Callable[[], str], api_url: str = DEFAULT_API,
                 retry: Retry | None = None, *, refresh: Callable[[], bool] | None = None) -> None:
        from github import Github

        retry = retry or Retry()
        self.full_name = repo
        self.owner = repo.split("/")[0]
        self.api_url = api_url.rstrip("/")
        self._refresh = refresh
        # lazy: objects are not fetched before use, so an edit is one request, not two.
        self._gh = Github(auth=_auth(token), base_url=self.api_url, timeout=int(max(1, retry.timeout)),
                          retry=_policy(retry), lazy=True, seconds_between_requests=retry.between_requests,
                          seconds_between_writes=retry.between_writes)
        self._repo = self._gh.get_repo(repo)

    # -- calls ------------------------------------------------------------------------------------
    def role(self, login: str) -> str:
        """The person's role on the repository (admin, maintain, write, triage, read, none)."""
        def call() -> str:
            try:
                return str(self._repo.get_collaborator_role_name(login))
            except _unknown():
                return "none"
        return self._do(f"reading {login}'s permission on {self.full_name}", call)

    def pull(self, number: int) -> Pull:
        """One pull request."""
        return self._do(f"reading pull request #{number}", lambda: _pull(self._repo.get_pull(number)))

    def pulls(self, *, head_ref: str | None = None, state: str = "open") -> list[Pull]:
        """Pull requests, newest first; head_ref limits them to that branch in this repository."""
        head = f"{self.owner}:{head_ref}" if head_ref else None

        def call() -> list[Pull]:
            items = self._repo.get_pulls(state=state, head=head) if head else self._repo.get_pulls(state=state)
            return [_pull(p) for p in items]
        return self._do("listing pull requests", call)

    def create_pull(self, *, head: str, base: str, title: str, body: str, draft: bool = True) -> Pull:
        """Open a pull request from a branch of this repository."""
        return self._do(f"opening a pull request from {head} to {base}", lambda: _pull(
            self._repo.create_pull(base=base, head=head, title=title, body=body, draft=draft)))

    def set_pull_body(self, number: int, body: str) -> None:
        """Replace a pull request's body (one request)."""
        self._do(f"updating the body of pull request #{number}", lambda: self._repo.get_pull(number).edit(body=body))

    def comment(self, number: int, body: str) -> int:
        """Comment on an issue or pull request; return the comment's id."""
        return self._do(f"commenting on #{number}",
                        lambda: int(self._repo.get_issue(number).create_comment(body).id))

    def comments(self, number: int) -> list[Comment]:
        """Comments on an issue or pull request, oldest first."""
        return self._do(f"listing the comments on #{number}", lambda: [
            Comment(id=c.id, body=c.body or "", login=c.user.login, user_type=c.user.type)
            for c in self._repo.get_issue(number).get_comments()])

    def get_comment(self, comment_id: int) -> Comment:
        """One issue or pull-request comment."""
        def call() -> Comment:
            data = self._request("GET", f"/issues/comments/{comment_id}", None)
            user = data.get("user") or {}
            return Comment(id=int(data["id"]), body=str(data.get("body") or ""), login=str(user.get("login", "")),
                           user_type=str(user.get("type", "")))
        return self._do(f"reading comment {comment_id}", call)

    def edit_comment(self, comment_id: int, body: str) -> None:
        """Replace a comment's body."""
        self._do(f"editing comment {comment_id}",
                 lambda: self._request("PATCH", f"/issues/comments/{comment_id}", {"body": body}))

    def react(self, comment_id: int, content: str) -> None:
        """Add a reaction (eyes, rocket, confused, ...) to a comment; an existing one is kept."""
        self._do(f"reacting {content} to comment {comment_id}",
                 lambda: self._request("POST", f"/issues/comments/{comment_id}/reactions", {"content": content}))

    def dispatch(self, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        """Start a workflow run (workflow_dispatch); with GITHUB_TOKEN this is one of the few ways to start one."""
        self._do(f"starting workflow {workflow} on {ref}", lambda: self._request(
            "POST", f"/actions/workflows/{quote(workflow, safe='')}/dispatches", {"ref": ref, "inputs": inputs}))

    def _do(self, what: str, call: Callable[[], T]) -> T:
        """Run call with errors turned into GitHubError; after a 401, once more with a fresh token if there is one."""
        try:
            with _errors(what):
                return call()
        except GitHubError as exc:
            if exc.status != 401 or self._refresh is None or not self._refresh():
                raise
        with _errors(what):
            return call()

    def _request(self, method: str, path: str, payload: dict[str, Any] | None) -> Any:
        _, data = self._gh.requester.requestJsonAndCheck(
            method, f"{self.api_url}/repos/{self.full_name}{path}", input=payload)
        return data


def app_minter(repo: str, app_id: str, private_key: str, api_url: str = DEFAULT_API,
               retry: Retry | None = None) -> Callable[[], tuple[str, float]]:
    """A function that mints an installation token of the GitHub App installed on repo: (token, expires_at)."""
    from github import Auth, GithubIntegration

    retry = retry or Retry()
    try:
        auth = Auth.AppAuth(app_id.strip(), private_key)
    except (AssertionError, ValueError) as exc:
        raise ArlError(f"the GitHub App credentials are unusable: {type(exc).__name__}", hint=APP_HINT) from None
    app = GithubIntegration(auth=auth, base_url=api_url.rstrip("/"), timeout=int(max(1, retry.timeout)),
                            retry=_policy(retry), seconds_between_requests=retry.between_requests,
                            seconds_between_writes=retry.between_writes)
    owner, name = repo.split("/", 1)
    installation: list[int] = []

    def mint() -> tuple[str, float]:
        from jwt import PyJWTError

        with _errors(f"minting a token of GitHub App {app_id} for {repo}", app_hint=True):
            try:  # the JWT is signed here, with the key: a key that is no PEM private key fails now
                if not installation:
                    installation.append(int(app.get_repo_installation(owner, name).id))
                token = app.get_access_token(installation[0])
            except (PyJWTError, ValueError, TypeError) as exc:
                raise ArlError(f"the GitHub App's private key cannot sign: {type(exc).__name__}",
                               hint=APP_HINT) from None
            return str(token.token), token.expires_at.timestamp()
    return mint


APP_HINT = ("give the App's numeric ID as ARL_GITHUB_APP_ID and its private key (the whole PEM file) as "
            "ARL_GITHUB_APP_PRIVATE_KEY, both as secrets, and install the App on this repository")


def _auth(token: str | Callable[[], str]) -> Any:
    """PyGithub auth that asks for the token on every request, so a refreshed one is used at once."""
    from github import Auth

    if isinstance(token, str):
        return Auth.Token(token) if token else None
    source = token

    class Fresh(Auth.Token):
        def __init__(self) -> None:
            super().__init__("unused")

        @property
        def token(self) -> str:
            return source()

    return Fresh()


def _policy(retry: Retry) -> Any:
    from github import GithubRetry

    return GithubRetry(
        total=retry.total, backoff_factor=retry.backoff, secondary_rate_wait=retry.secondary_wait,
        max_rate_limit_wait=retry.max_wait,
        # PATCH is what updates the pull-request body: retry it like GET and POST (urllib3 leaves it out).
        allowed_methods=frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"}),
    )


def _pull(p: Any) -> Pull:
    head_repo = p.head.repo.full_name if p.head.repo is not None else ""
    return Pull(number=p.number, title=p.title or "", body=p.body or "", state=p.state, draft=bool(p.draft),
                head_ref=p.head.ref, head_repo=head_repo, base_ref=p.base.ref, html_url=p.html_url or "")


def _unknown() -> type[Exception]:
    from github import UnknownObjectException

    return UnknownObjectException


@contextmanager
def _errors(what: str, *, app_hint: bool = False) -> Iterator[None]:
    """Turn PyGithub's and the network's exceptions into one GitHubError that says what failed."""
    from github import BadCredentialsException, GithubException
    from requests import RequestException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except BadCredentialsException:
        raise GitHubError(what, 401, "bad credentials", hint=APP_HINT if app_hint else "check the token "
                          "(GITHUB_TOKEN or the github-token input); it may have expired: GITHUB_TOKEN lives at "
                          "most 24 hours, and a token from actions/create-github-app-token 1 hour, unrefreshed "
                          "(give arl-bot the App's credentials instead: it refreshes them)") from None
    except GithubException as exc:
        data = exc.data if isinstance(exc.data, dict) else {}
        detail = str(data.get("message") or exc)
        problems = [str(e.get("message") or e.get("code")) for e in data.get("errors", []) if isinstance(e, dict)]
        if problems:
            detail += ": " + "; ".join(problems)
        hint = None
        if exc.status == 403 and "not permitted to create or approve pull requests" in detail:
            hint = ('a repository admin must turn on Settings → Actions → General → Workflow permissions → "Allow '
                    'GitHub Actions to create and approve pull requests"')
        elif exc.status == 403:
            hint = ("the token may lack a permission the workflow must grant (contents: write, pull-requests: "
                    "write; actions: write to hand a long run over to a new job)")
        raise GitHubError(what, exc.status, detail, hint=hint or (APP_HINT if app_hint else None)) from None
    except (RequestException, HTTPError) as exc:
        raise GitHubError(what, None, f"{type(exc).__name__}: {exc}",
                          hint="GitHub did not answer; the record on the branch is safe, run again later") from None

