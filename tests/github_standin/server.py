"""A loopback stand-in for the parts of GitHub's REST API arl-bot uses, with faults tests can inject."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import payloads

WEB = "https://github.example"
ROLES = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read", "none": "none"}
LIMIT = 5000  # the primary rate limit GitHub gives a token


def stamp() -> str:
    """Now, as GitHub writes times."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Exchange:
    """One request the stand-in answered; `operation` is the OpenAPI path template."""

    method: str
    path: str
    operation: str
    status: int
    body: Any
    request: Any = None
    fault: bool = False  # an injected failure, not an answer of the API's own
    auth: str = ""  # what authenticated it: "actions" (GITHUB_TOKEN), "installation", "app" (a JWT) or ""


@dataclass
class Token:
    """A token the stand-in accepts until `expires_at` (time.time()); after it: 401 Bad credentials."""

    value: str
    kind: str  # "actions" (the workflow's GITHUB_TOKEN) or "installation" (minted for a GitHub App)
    expires_at: float | None = None


@dataclass
class App:
    """A GitHub App installed on the repository's owner: its JWTs are checked against public_key (PEM)."""

    app_id: int
    public_key: str
    installation_id: int
    slug: str = "arl-test-app"


@dataclass
class Fault:
    """A failure served instead of the real answer, `times` times, to requests that match."""

    method: str
    pattern: re.Pattern[str]
    kind: str  # "500", "secondary" (403 + Retry-After), "primary" (403, rate limit exhausted), "hang"
    times: int = 1
    retry_after: int = 1
    hang_s: float = 30.0


@dataclass
class Hold:
    """Requests that match, made with `token`, wait until `release()`: GitHub slow for one job's client only."""

    method: str
    pattern: re.Pattern[str]
    token: str
    released: threading.Event = field(default_factory=threading.Event)
    waited: int = 0  # requests that were held

    def release(self) -> None:
        """Let every held request, and every later one, through."""
        self.released.set()


@dataclass
class _State:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # issues and pulls share numbers
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    reactions: list[dict[str, Any]] = field(default_factory=list)
    forks: dict[str, dict[str, Any]] = field(default_factory=dict)
    dispatches: list[dict[str, Any]] = field(default_factory=list)


Route = tuple[str, re.Pattern[str], str, Callable[..., tuple[int, Any]]]


class GitHubStandIn:
    """Serves GitHub's REST API for one repository on 127.0.0.1; see `requests` for what was asked."""

    def __init__(self, repo: str = "Codertocat/Hello-World", *, token: str = "test-token",
                 git_dir: Path | None = None, default_branch: str = "main", bot_login: str = "github-actions[bot]",
                 per_page: int = 30) -> None:
        self.full_name = repo
        self.token = token
        self.git_dir = git_dir  # a bare repository: pull requests are checked against its branches, as on GitHub
        self.default_branch = default_branch
        self.bot_login = bot_login  # who the token acts as (GITHUB_TOKEN acts as github-actions[bot])
        self.per_page = per_page
        self.requests: list[Exchange] = []
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.remaining = LIMIT
        # Repository settings GitHub has and tests turn off: "Allow GitHub Actions to create and approve pull
        # requests" (off by default for new repositories in personal accounts), and draft pull requests
        # (none in private repositories on GitHub Free and Pro).
        self.actions_may_open_pulls = True
        self.drafts_supported = True
        self.actions_write = True  # whether the workflow granted GITHUB_TOKEN `actions: write` (to dispatch)
        self.tokens: dict[str, Token] = {token: Token(token, "actions")} if token else {}
        self.app: App | None = None
        self.token_lifetime_s = 3600.0  # what GitHub gives an installation token
        self.mints = 0
        self._mint_ids = itertools.count(1)
        self._auth = ""  # who made the request being answered (set under the lock)
        self._state = _State()
        self._lock = threading.RLock()
        self._ids = iter(range(1_000_001, 10**9))
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        owner = repo.split("/")[0]
        self.add_user(owner, role="admin")
        self.add_user(bot_login, role="write", kind="Bot")
        self._routes: list[Route] = [
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)"), "/repos/{owner}/{repo}", self._get_repo),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/pulls"), "/repos/{owner}/{repo}/pulls", self._list_pulls),
            ("POST", re.compile(r"/repos/([^/]+)/([^/]+)/pulls"), "/repos/{owner}/{repo}/pulls", self._create_pull),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/pulls/(\d+)"), "/repos/{owner}/{repo}/pulls/{pull_number}",
             self._get_pull),
            ("PATCH", re.compile(r"/repos/([^/]+)/([^/]+)/pulls/(\d+)"),
             "/repos/{owner}/{repo}/pulls/{pull_number}", self._update_pull),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments"),
             "/repos/{owner}/{repo}/issues/{issue_number}/comments", self._list_comments),
            ("POST", re.compile(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments"),
             "/repos/{owner}/{repo}/issues/{issue_number}/comments", self._create_comment),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/issues/comments/(\d+)"),
             "/repos/{owner}/{repo}/issues/comments/{comment_id}", self._get_comment),
            ("PATCH", re.compile(r"/repos/([^/]+)/([^/]+)/issues/comments/(\d+)"),
             "/repos/{owner}/{repo}/issues/comments/{comment_id}", self._update_comment),
            ("POST", re.compile(r"/repos/([^/]+)/([^/]+)/issues/comments/(\d+)/reactions"),
             "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", self._react),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/collaborators/([^/]+)/permission"),
             "/repos/{owner}/{repo}/collaborators/{username}/permission", self._permission),
            ("GET", re.compile(r"/users/([^/]+)"), "/users/{username}", self._get_user),
            ("GET", re.compile(r"/rate_limit"), "/rate_limit", self._rate_limit),
            ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/installation"), "/repos/{owner}/{repo}/installation",
             self._get_installation),
            ("POST", re.compile(r"/app/installations/(\d+)/access_tokens"),
             "/app/installations/{installation_id}/access_tokens", self._mint),
            ("POST", re.compile(r"/repos/([^/]+)/([^/]+)/actions/workflows/([^/]+)/dispatches"),
             "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", self._dispatch),
        ]

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The API base URL (what GITHUB_API_URL is set to)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> GitHubStandIn:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="github-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release hung requests."""
        self._stopping.set()
        for held in self.holds:
            held.release()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GitHubStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- arranging the world ------------------------------------------------------------------------
    def add_user(self, login: str, *, role: str = "none", kind: str = "User") -> dict[str, Any]:
        """A GitHub account with a role on the repository (admin, maintain, write, triage, read, none)."""
        with self._lock:
            uid = len(self._state.users) + 1000
            self._state.users[login] = payloads.user(self.url, WEB, login, uid, kind)
            self._state.roles[login] = role
            return self._state.users[login]

    def add_pull(self, head_ref: str, *, base_ref: str | None = None, title: str = "a pull request",
                 body: str = "", author: str | None = None, fork: str | None = None, draft: bool = False) -> int:
        """An open pull request; fork='someone/Hello-World' puts its head in a fork."""
        with self._lock:
            who = self._state.users[author or self.full_name.split("/")[0]]
            return self._new_pull(head_ref, base_ref or self.default_branch, title, body, who, fork, draft)

    def add_issue(self, title: str = "an issue") -> int:
        """An open issue (not a pull request)."""
        with self._lock:
            number = len(self._state.issues) + 1
            self._state.issues[number] = {"number": number, "title": title, "pull": False}
            return number

    def add_comment(self, number: int, login: str, body: str) -> dict[str, Any]:
        """A comment a person made on an issue or pull request; returns it as the API shows it."""
        with self._lock:
            return self._new_comment(number, self._state.users[login], body)

    def add_app(self, app_id: int, public_key: str, installation_id: int = 4711) -> App:
        """A GitHub App installed for the repository; public_key (PEM) checks the JWTs it signs."""
        self.app = App(app_id, public_key, installation_id)
        self.add_user(f"{self.app.slug}[bot]", role="write", kind="Bot")
        return self.app

    def job_token(self, lifetime_s: float) -> str:
        """A fresh GITHUB_TOKEN for one job, dead lifetime_s from now (GitHub's: the job's end, 24 h at most)."""
        value = f"ghs_job{next(self._mint_ids):04d}{secrets.token_hex(8)}"
        with self._lock:
            self.tokens[value] = Token(value, "actions", time.time() + lifetime_s)
        return value

    def expire_tokens(self) -> None:
        """Every token issued so far stops working now (GITHUB_TOKEN included), as each does at its expiry."""
        with self._lock:
            for token in self.tokens.values():
                token.expires_at = time.time() - 1

    def valid(self, value: str) -> Token | None:
        """The live token with that value (None: unknown or expired)."""
        with self._lock:
            token = self.tokens.get(value)
            if token is None or (token.expires_at is not None and token.expires_at <= time.time()):
                return None
            return token

    def inject(self, kind: str, *, method: str = "GET", path: str = ".*", times: int = 1, retry_after: int = 1,
               hang_s: float = 30.0) -> Fault:
        """Answer the next `times` matching requests with a fault instead."""
        fault = Fault(method.upper(), re.compile(path), kind, times, retry_after, hang_s)
        with self._lock:
            self.faults.append(fault)
        return fault

    def hold(self, *, method: str, path: str, token: str) -> Hold:
        """Hold the matching requests made with token until the Hold is released (or the stand-in stops)."""
        held = Hold(method.upper(), re.compile(path), token)
        with self._lock:
            self.holds.append(held)
        return held

    # -- looking at the world -----------------------------------------------------------------------
    def pulls(self) -> list[dict[str, Any]]:
        """Every pull request, as stored."""
        with self._lock:
            return [dict(i) for i in self._state.issues.values() if i["pull"]]

    def pull(self, number: int) -> dict[str, Any]:
        """One pull request, as stored."""
        with self._lock:
            return dict(self._state.issues[number])

    def comments(self, number: int) -> list[dict[str, Any]]:
        """Comments on an issue or pull request, oldest first."""
        with self._lock:
            return [dict(c) for c in self._state.comments.values() if c["issue_number"] == number]

    def replies(self, number: int) -> list[str]:
        """Bodies of the comments the token's user (the bot) made on an issue or pull request."""
        return [c["body"] for c in self.comments(number) if c["user"]["login"] == self.bot_login]

    def reactions(self, comment_id: int) -> list[str]:
        """Reaction contents on a comment, in order."""
        with self._lock:
            return [r["content"] for r in self._state.reactions if r["comment_id"] == comment_id]

    def dispatches(self) -> list[dict[str, Any]]:
        """Workflow dispatches made so far: workflow, ref, inputs and who made them (the token's kind)."""
        with self._lock:
            return [dict(d) for d in self._state.dispatches]

    def count(self, method: str | None = None, operation: str | None = None) -> int:
        """How many requests matched (faults included)."""
        with self._lock:
            return sum(1 for e in self.requests if (method is None or e.method == method)
                       and (operation is None or e.operation == operation))

    # -- internals ------------------------------------------------------------------------------------
    def _repo_json(self, full: bool = False) -> dict[str, Any]:
        owner = self._state.users[self.full_name.split("/")[0]]
        return payloads.repository(self.url, WEB, self.full_name, 1296269, owner, self.default_branch, full=full)

    def _fork_json(self, full_name: str) -> dict[str, Any]:
        if full_name not in self._state.forks:
            login = full_name.split("/")[0]
            owner = self._state.users.get(login) or self.add_user(login)
            self._state.forks[full_name] = payloads.repository(
                self.url, WEB, full_name, 2000000 + len(self._state.forks), owner, self.default_branch)
            self._state.forks[full_name]["fork"] = True
        return self._state.forks[full_name]

    def _sha(self, ref: str) -> str | None:
        if self.git_dir is None:
            return f"{abs(hash(ref)) % 16**40:040x}"
        out = subprocess.run(["git", "--git-dir", str(self.git_dir), "rev-parse", "--verify", "--quiet",
                              f"refs/heads/{ref}"], capture_output=True, text=True)
        return out.stdout.strip() or None

    def _new_pull(self, head_ref: str, base_ref: str, title: str, body: str | None, who: dict[str, Any],
                  fork: str | None, draft: bool) -> int:
        number = len(self._state.issues) + 1
        now = stamp()
        self._state.issues[number] = {
            "number": number, "id": next(self._ids), "pull": True, "title": title, "body": body,
            "user": who, "state": "open", "draft": draft, "head_ref": head_ref, "base_ref": base_ref,
            "head_sha": self._sha(head_ref) or "0" * 40, "base_sha": self._sha(base_ref) or "0" * 40,
            "head_repo": self._fork_json(fork) if fork else self._repo_json(), "comments": 0,
            "created_at": now, "updated_at": now,
        }
        return number

    def _new_comment(self, number: int, who: dict[str, Any], body: str) -> dict[str, Any]:
        cid = next(self._ids)
        now = stamp()
        role = self._state.roles.get(who["login"], "none")
        assoc = "OWNER" if role == "admin" else ("COLLABORATOR" if role != "none" else "NONE")
        self._state.comments[cid] = {"id": cid, "issue_number": number, "body": body, "user": who,
                                     "created_at": now, "updated_at": now, "author_association": assoc}
        if self._state.issues[number]["pull"]:
            self._state.issues[number]["comments"] += 1
        return payloads.issue_comment(self.url, WEB, self.full_name, self._state.comments[cid])

    def _check_repo(self, owner: str, repo: str) -> None:
        if f"{owner}/{repo}" != self.full_name:
            raise _Answer(404, payloads.error("Not Found", 404))

    def _pull_or_404(self, number: str) -> dict[str, Any]:
        item = self._state.issues.get(int(number))
        if item is None or not item["pull"]:
            raise _Answer(404, payloads.error("Not Found", 404))
        return item

    def _pull_json(self, item: dict[str, Any], full: bool = True) -> dict[str, Any]:
        if self.git_dir is not None:
            item["head_sha"] = self._sha(item["head_ref"]) or item["head_sha"]
        return payloads.pull_request(self.url, WEB, self._repo_json(), item, full=full)

    # -- routes ---------------------------------------------------------------------------------------
    def _get_repo(self, q: dict[str, str], body: Any, owner: str, repo: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        return 200, self._repo_json(full=True)

    def _list_pulls(self, q: dict[str, str], body: Any, owner: str, repo: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        state = q.get("state", "open")
        items = [i for i in self._state.issues.values() if i["pull"] and state in ("all", i["state"])]
        if "head" in q:  # "owner:branch", as GitHub wants it
            login, _, ref = q["head"].partition(":")
            items = [i for i in items if i["head_ref"] == ref and i["head_repo"]["owner"]["login"] == login]
        if "base" in q:
            items = [i for i in items if i["base_ref"] == q["base"]]
        return 200, [self._pull_json(i, full=False) for i in sorted(items, key=lambda i: -int(i["number"]))]

    def _create_pull(self, q: dict[str, str], body: Any, owner: str, repo: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        head = str(body.get("head", "")).split(":")[-1]
        base = str(body.get("base", ""))
        if not body.get("title") or not head or not base:
            raise _Answer(422, {**payloads.error("Validation Failed", 422),
                                "errors": [{"resource": "PullRequest", "code": "missing_field"}]})
        if not self.actions_may_open_pulls and self._auth == "actions":
            raise _Answer(403, {**payloads.error(
                "GitHub Actions is not permitted to create or approve pull requests.", 403),
                "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"})
        if body.get("draft") and not self.drafts_supported:
            raise _Answer(422, {**payloads.error("Validation Failed", 422), "errors": [{
                "resource": "PullRequest", "code": "custom",
                "message": "Draft pull requests are not supported in this repository."}]})
        for i in self._state.issues.values():
            if i["pull"] and i["state"] == "open" and i["head_ref"] == head and i["base_ref"] == base:
                raise _Answer(422, {**payloads.error("Validation Failed", 422), "errors": [{
                    "resource": "PullRequest", "code": "custom",
                    "message": f"A pull request already exists for {owner}:{head}."}]})
        if self.git_dir is not None:  # GitHub checks the branches exist and differ
            head_sha, base_sha = self._sha(head), self._sha(base)
            if head_sha is None or base_sha is None:
                raise _Answer(422, {**payloads.error("Validation Failed", 422), "errors": [{
                    "resource": "PullRequest", "field": "head" if head_sha is None else "base",
                    "code": "invalid"}]})
            ahead = subprocess.run(["git", "--git-dir", str(self.git_dir), "rev-list", "--count",
                                    f"{base_sha}..{head_sha}"], capture_output=True, text=True).stdout.strip()
            if ahead == "0":
                raise _Answer(422, {**payloads.error("Validation Failed", 422), "errors": [{
                    "resource": "PullRequest", "code": "custom",
                    "message": f"No commits between {base} and {head}"}]})
        number = self._new_pull(head, base, str(body["title"]), body.get("body"),
                                self._state.users[self.bot_login], None, bool(body.get("draft", False)))
        return 201, self._pull_json(self._state.issues[number])

    def _get_pull(self, q: dict[str, str], body: Any, owner: str, repo: str, number: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        return 200, self._pull_json(self._pull_or_404(number))

    def _update_pull(self, q: dict[str, str], body: Any, owner: str, repo: str, number: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        item = self._pull_or_404(number)
        if "body" in body and body["body"] is not None and len(body["body"]) > 65536:
            raise _Answer(422, {**payloads.error("Validation Failed", 422), "errors": [{
                "resource": "Issue", "field": "body", "code": "custom",
                "message": "body is too long (maximum is 65536 characters)"}]})
        for key in ("title", "body", "state"):
            if key in body:
                item[key] = body[key]
        item["updated_at"] = stamp()
        return 200, self._pull_json(item)

    def _list_comments(self, q: dict[str, str], body: Any, owner: str, repo: str, number: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        if int(number) not in self._state.issues:
            raise _Answer(404, payloads.error("Not Found", 404))
        return 200, [payloads.issue_comment(self.url, WEB, self.full_name, c) for c in self._state.comments.values()
                     if c["issue_number"] == int(number)]

    def _create_comment(self, q: dict[str, str], body: Any, owner: str, repo: str, number: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        if int(number) not in self._state.issues:
            raise _Answer(404, payloads.error("Not Found", 404))
        if not body.get("body"):
            raise _Answer(422, payloads.error("Validation Failed", 422))
        return 201, self._new_comment(int(number), self._state.users[self.bot_login], str(body["body"]))

    def _comment_or_404(self, cid: str) -> dict[str, Any]:
        if int(cid) not in self._state.comments:
            raise _Answer(404, payloads.error("Not Found", 404))
        return self._state.comments[int(cid)]

    def _get_comment(self, q: dict[str, str], body: Any, owner: str, repo: str, cid: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        return 200, payloads.issue_comment(self.url, WEB, self.full_name, self._comment_or_404(cid))

    def _update_comment(self, q: dict[str, str], body: Any, owner: str, repo: str, cid: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        comment = self._comment_or_404(cid)
        comment["body"] = str(body.get("body", comment["body"]))
        comment["updated_at"] = stamp()
        return 200, payloads.issue_comment(self.url, WEB, self.full_name, comment)

    def _react(self, q: dict[str, str], body: Any, owner: str, repo: str, cid: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        self._comment_or_404(cid)
        content = body.get("content")
        if content not in ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"):
            raise _Answer(422, payloads.error("Validation Failed", 422))
        who = self._state.users[self.bot_login]
        for r in self._state.reactions:  # GitHub answers 200 with the existing reaction
            if r["comment_id"] == int(cid) and r["content"] == content and r["user"]["login"] == who["login"]:
                return 200, payloads.reaction(r["id"], content, who, r["at"])
        rid = next(self._ids)
        at = stamp()
        self._state.reactions.append({"id": rid, "comment_id": int(cid), "content": content, "user": who, "at": at})
        return 201, payloads.reaction(rid, content, who, at)

    def _permission(self, q: dict[str, str], body: Any, owner: str, repo: str, login: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        if login not in self._state.users:
            raise _Answer(404, payloads.error("Not Found", 404))
        role = self._state.roles.get(login, "none")
        who = {**self._state.users[login], "role_name": role,
               "permissions": {"admin": role == "admin", "maintain": role in ("admin", "maintain"),
                               "push": ROLES[role] in ("admin", "write"),
                               "triage": role not in ("read", "none"), "pull": role != "none"}}
        return 200, {"permission": ROLES[role], "role_name": role, "user": who}

    def _get_user(self, q: dict[str, str], body: Any, login: str) -> tuple[int, Any]:
        if login not in self._state.users:
            raise _Answer(404, payloads.error("Not Found", 404))
        u = self._state.users[login]
        return 200, payloads.public_user(self.url, WEB, login, u["id"], u["type"])

    def _rate_limit(self, q: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, payloads.rate_limit(LIMIT, self.remaining, int(time.time()) + 3600)

    def _get_installation(self, q: dict[str, str], body: Any, owner: str, repo: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        if self.app is None:
            raise _Answer(404, payloads.error("Not Found", 404))
        account = self._state.users[owner]
        return 200, payloads.installation(self.url, WEB, self.app.installation_id, self.app.app_id, self.app.slug,
                                          account)

    def _mint(self, q: dict[str, str], body: Any, iid: str) -> tuple[int, Any]:
        if self.app is None or int(iid) != self.app.installation_id:
            raise _Answer(404, payloads.error("Not Found", 404))
        value = f"ghs_{next(self._mint_ids):04d}{secrets.token_hex(16)}"
        expires = time.time() + self.token_lifetime_s
        self.tokens[value] = Token(value, "installation", expires)
        self.mints += 1
        at = datetime.fromtimestamp(int(expires), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return 201, payloads.installation_token(value, at)

    def _dispatch(self, q: dict[str, str], body: Any, owner: str, repo: str, workflow: str) -> tuple[int, Any]:
        self._check_repo(owner, repo)
        if not self.actions_write and self._auth == "actions":
            raise _Answer(403, {**payloads.error("Resource not accessible by integration", 403),
                                "documentation_url": "https://docs.github.com/rest/actions/workflows"
                                                     "#create-a-workflow-dispatch-event"})
        if not body.get("ref"):
            raise _Answer(422, payloads.error("Invalid request.\n\n\"ref\" wasn't supplied.", 422))
        inputs = body.get("inputs") or {}
        if len(inputs) > 25 or not all(isinstance(v, str) for v in inputs.values()):
            raise _Answer(422, payloads.error("Invalid request.", 422))
        self._state.dispatches.append({"workflow": workflow, "ref": body["ref"], "inputs": dict(inputs),
                                       "by": self._auth})
        return 204, None

    def _authenticate(self, header: str, operation: str) -> str | None:
        """Who the Authorization header is: 'actions', 'installation', 'app' (a valid JWT), or None."""
        scheme, _, credential = header.partition(" ")
        if operation.startswith("/app/") or operation == "/repos/{owner}/{repo}/installation":
            return "app" if scheme.lower() == "bearer" and self._jwt_ok(credential) else None
        if scheme.lower() not in ("token", "bearer"):
            return None
        token = self.valid(credential)
        return token.kind if token else None

    def _jwt_ok(self, credential: str) -> bool:
        import jwt

        if self.app is None:
            return False
        try:  # GitHub checks the signature, the issuer (the App's id) and that it is not expired
            claims = jwt.decode(credential, self.app.public_key, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]}, leeway=60)
        except jwt.PyJWTError:
            return False
        return str(claims["iss"]) == str(self.app.app_id)

    # -- dispatch -------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        """Answer one request: (status, extra headers, JSON body or None for a hang)."""
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        route = next(((op, fn, m.groups()) for verb, rx, op, fn in self._routes
                      if verb == method and (m := rx.fullmatch(path))), None)
        operation = route[0] if route else ""
        request = json.loads(raw) if raw else {}
        extra: dict[str, str] = {}
        with self._lock:
            fault = next((f for f in self.faults if f.times > 0 and f.method == method and f.pattern.search(path)),
                         None)
            if fault is not None:
                fault.times -= 1
        credential = headers.get("authorization", "").partition(" ")[2]
        with self._lock:
            held = next((h for h in self.holds if not h.released.is_set() and h.method == method
                         and h.token == credential and h.pattern.search(path)), None)
            if held is not None:
                held.waited += 1
        while held is not None and not held.released.wait(0.05) and not self._stopping.is_set():
            pass  # answered once released, as GitHub answers a request that was slow to get through
        auth = self._authenticate(headers.get("authorization", ""), operation) if self.tokens or self.app else ""
        if fault is not None:
            status, answer, extra = self._fault(fault)
        elif auth is None:
            status, answer = 401, payloads.error("Bad credentials", 401)
        elif route is None:
            status, answer = 404, payloads.error("Not Found", 404)
        else:
            try:
                with self._lock:
                    self._auth = auth
                    status, answer = route[1](query, request, *route[2])
            except _Answer as exc:
                status, answer = exc.status, exc.body
            if isinstance(answer, list):
                answer, extra = self._page(answer, query, path)
        with self._lock:
            self.remaining = max(0, self.remaining - 1)
            self.requests.append(Exchange(method, path, operation, status, answer, request, fault is not None,
                                          auth or ""))
        return status, extra, answer

    def _page(self, items: list[Any], query: dict[str, str], path: str) -> tuple[list[Any], dict[str, str]]:
        per_page = int(query.get("per_page", self.per_page))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        if page * per_page >= len(items):
            return chunk, {}
        rest = "&".join(f"{k}={v}" for k, v in query.items() if k not in ("page",))
        link = f'<{self.url}{path}?{rest + "&" if rest else ""}page={page + 1}>; rel="next"'
        return chunk, {"Link": link}

    def _fault(self, fault: Fault) -> tuple[int, Any, dict[str, str]]:
        if fault.kind == "hang":
            self._stopping.wait(fault.hang_s)
            return 0, None, {}
        if fault.kind == "secondary":
            return 403, payloads.error("You have exceeded a secondary rate limit. Please wait a few minutes "
                                       "before you try again.", 403), {"Retry-After": str(fault.retry_after)}
        if fault.kind == "primary":
            reset = int(time.time()) + fault.retry_after
            return 403, payloads.error("API rate limit exceeded for installation ID 1.", 403), {
                "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
        return 500, payloads.error("Server Error", 500), {}

    def rate_headers(self) -> dict[str, str]:
        """The rate-limit headers GitHub puts on every answer."""
        return {"X-RateLimit-Limit": str(LIMIT), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(int(time.time()) + 3600), "X-RateLimit-Used": str(LIMIT - self.remaining),
                "X-RateLimit-Resource": "core"}


class _Answer(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _handler_for(standin: GitHubStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body in one write: no delayed-ACK stall per answer

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, answer = standin.handle(self.command, self.path, headers, raw)
            if status == 0:  # a hung connection: drop it without an answer
                self.close_connection = True
                return
            data = b"" if status == 204 else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in {**standin.rate_headers(), **extra}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
