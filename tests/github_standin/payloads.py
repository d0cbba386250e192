"""JSON objects shaped as GitHub's REST API returns them (checked against its OpenAPI description)."""

from __future__ import annotations

import base64
from typing import Any

STAMP = "2024-05-01T12:00:00Z"
REPO_LINKS = (  # (field, suffix) of the URL fields every repository object carries
    ("archive_url", "/{archive_format}{/ref}"), ("assignees_url", "/assignees{/user}"),
    ("blobs_url", "/git/blobs{/sha}"), ("branches_url", "/branches{/branch}"),
    ("collaborators_url", "/collaborators{/collaborator}"), ("comments_url", "/comments{/number}"),
    ("commits_url", "/commits{/sha}"), ("compare_url", "/compare/{base}...{head}"),
    ("contents_url", "/contents/{+path}"), ("contributors_url", "/contributors"),
    ("deployments_url", "/deployments"), ("downloads_url", "/downloads"), ("events_url", "/events"),
    ("forks_url", "/forks"), ("git_commits_url", "/git/commits{/sha}"), ("git_refs_url", "/git/refs{/sha}"),
    ("git_tags_url", "/git/tags{/sha}"), ("hooks_url", "/hooks"), ("issue_comment_url", "/issues/comments{/number}"),
    ("issue_events_url", "/issues/events{/number}"), ("issues_url", "/issues{/number}"),
    ("keys_url", "/keys{/key_id}"), ("labels_url", "/labels{/name}"), ("languages_url", "/languages"),
    ("merges_url", "/merges"), ("milestones_url", "/milestones{/number}"),
    ("notifications_url", "/notifications{?since,all,participating}"), ("pulls_url", "/pulls{/number}"),
    ("releases_url", "/releases{/id}"), ("stargazers_url", "/stargazers"), ("statuses_url", "/statuses/{sha}"),
    ("subscribers_url", "/subscribers"), ("subscription_url", "/subscription"), ("tags_url", "/tags"),
    ("teams_url", "/teams"), ("trees_url", "/git/trees{/sha}"),
)


def node_id(kind: str, number: int) -> str:
    """A GraphQL node id in GitHub's old style (base64 of kind and number)."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def user(api: str, web: str, login: str, uid: int, kind: str = "User") -> dict[str, Any]:
    """A simple-user object."""
    url = f"{api}/users/{login}"
    return {
        "login": login, "id": uid, "node_id": node_id(kind, uid), "avatar_url": f"{web}/avatars/u/{uid}",
        "gravatar_id": "", "url": url, "html_url": f"{web}/{login}", "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}", "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs", "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events", "type": kind, "site_admin": False,
        "user_view_type": "public",
    }


def public_user(api: str, web: str, login: str, uid: int, kind: str = "User") -> dict[str, Any]:
    """A public-user object (GET /users/{username})."""
    return {**user(api, web, login, uid, kind), "name": login, "company": None, "blog": "", "location": None,
            "email": None, "hireable": None, "bio": None, "public_repos": 1, "public_gists": 0,
            "followers": 0, "following": 0, "created_at": STAMP, "updated_at": STAMP}


def repository(api: str, web: str, full_name: str, rid: int, owner: dict[str, Any],
               default_branch: str, *, full: bool = False) -> dict[str, Any]:
    """A repository object; full=True adds what GET /repos/{owner}/{repo} returns beyond it."""
    url = f"{api}/repos/{full_name}"
    data: dict[str, Any] = {
        "id": rid, "node_id": node_id("Repository", rid), "name": full_name.split("/")[1],
        "full_name": full_name, "owner": owner, "private": False, "html_url": f"{web}/{full_name}",
        "description": None, "fork": False, "url": url, **{k: url + s for k, s in REPO_LINKS},
        "git_url": f"git://{web.split('://')[-1]}/{full_name}.git", "ssh_url": f"git@example:{full_name}.git",
        "clone_url": f"{web}/{full_name}.git", "svn_url": f"{web}/{full_name}", "mirror_url": None,
        "homepage": None, "language": "Python", "forks_count": 0, "forks": 0, "stargazers_count": 0,
        "watchers_count": 0, "watchers": 0, "size": 1, "default_branch": default_branch,
        "open_issues_count": 0, "open_issues": 0, "is_template": False, "topics": [], "has_issues": True,
        "has_projects": True, "has_wiki": True, "has_pages": False, "has_downloads": True,
        "has_discussions": False, "archived": False, "disabled": False, "visibility": "public",
        "pushed_at": STAMP, "created_at": STAMP, "updated_at": STAMP, "license": None,
        "allow_forking": True, "web_commit_signoff_required": False,
    }
    if full:
        data.update(network_count=0, subscribers_count=0)
    return data


def pull_request(api: str, web: str, repo: dict[str, Any], pr: dict[str, Any], *, full: bool) -> dict[str, Any]:
    """A pull-request (full) or pull-request-simple object from the stand-in's stored fields."""
    full_name = repo["full_name"]
    number = pr["number"]
    url = f"{api}/repos/{full_name}/pulls/{number}"
    issue_url = f"{api}/repos/{full_name}/issues/{number}"
    html = f"{web}/{full_name}/pull/{number}"

    def side(ref: str, sha: str, side_repo: dict[str, Any]) -> dict[str, Any]:
        owner = side_repo["owner"]
        return {"label": f"{owner['login']}:{ref}", "ref": ref, "sha": sha, "user": owner, "repo": side_repo}

    def link(href: str) -> dict[str, str]:
        return {"href": href}

    data: dict[str, Any] = {
        "url": url, "id": pr["id"], "node_id": node_id("PullRequest", pr["id"]), "html_url": html,
        "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": issue_url, "number": number,
        "state": pr["state"], "locked": False, "title": pr["title"], "user": pr["user"], "body": pr["body"],
        "labels": [], "milestone": None, "active_lock_reason": None, "created_at": pr["created_at"],
        "updated_at": pr["updated_at"], "closed_at": None, "merged_at": None, "merge_commit_sha": None,
        "assignee": None, "assignees": [], "requested_reviewers": [], "requested_teams": [],
        "commits_url": f"{url}/commits", "review_comments_url": f"{url}/comments",
        "review_comment_url": f"{api}/repos/{full_name}/pulls/comments{{/number}}",
        "comments_url": f"{issue_url}/comments",
        "statuses_url": f"{api}/repos/{full_name}/statuses/{pr['head_sha']}",
        "head": side(pr["head_ref"], pr["head_sha"], pr["head_repo"]),
        "base": side(pr["base_ref"], pr["base_sha"], repo),
        "_links": {"self": link(url), "html": link(html), "issue": link(issue_url),
                   "comments": link(f"{issue_url}/comments"), "review_comments": link(f"{url}/comments"),
                   "review_comment": link(f"{api}/repos/{full_name}/pulls/comments{{/number}}"),
                   "commits": link(f"{url}/commits"),
                   "statuses": link(f"{api}/repos/{full_name}/statuses/{pr['head_sha']}")},
        "author_association": "OWNER", "auto_merge": None, "draft": pr["draft"],
    }
    if full:
        data.update(merged=False, mergeable=True, rebaseable=True, mergeable_state="clean", merged_by=None,
                    comments=pr["comments"], review_comments=0, maintainer_can_modify=False, commits=1,
                    additions=1, deletions=0, changed_files=1)
    return data


def issue_comment(api: str, web: str, full_name: str, comment: dict[str, Any]) -> dict[str, Any]:
    """An issue-comment object."""
    cid, number = comment["id"], comment["issue_number"]
    return {
        "id": cid, "node_id": node_id("IssueComment", cid),
        "url": f"{api}/repos/{full_name}/issues/comments/{cid}",
        "html_url": f"{web}/{full_name}/pull/{number}#issuecomment-{cid}",
        "issue_url": f"{api}/repos/{full_name}/issues/{number}", "body": comment["body"],
        "user": comment["user"], "created_at": comment["created_at"], "updated_at": comment["updated_at"],
        "author_association": comment["author_association"], "performed_via_github_app": None,
    }


def reaction(reaction_id: int, content: str, who: dict[str, Any], at: str) -> dict[str, Any]:
    """A reaction object."""
    return {"id": reaction_id, "node_id": node_id("Reaction", reaction_id), "user": who, "content": content,
            "created_at": at}


def rate_limit(limit: int, remaining: int, reset: int) -> dict[str, Any]:
    """A rate-limit-overview object."""
    core = {"limit": limit, "remaining": remaining, "reset": reset, "used": limit - remaining}
    return {"resources": {"core": core, "search": {"limit": 30, "remaining": 30, "reset": reset, "used": 0}},
            "rate": core}


def error(message: str, status: int) -> dict[str, Any]:
    """GitHub's error body."""
    return {"message": message, "documentation_url": "https://docs.github.com/rest",
            "status": str(status)}


def installation(api: str, web: str, iid: int, app_id: int, slug: str, account: dict[str, Any]) -> dict[str, Any]:
    """An installation object (a GitHub App installed on an account, for one repository here)."""
    return {
        "id": iid, "account": account, "repository_selection": "selected",
        "access_tokens_url": f"{api}/app/installations/{iid}/access_tokens",
        "repositories_url": f"{api}/installation/repositories",
        "html_url": f"{web}/settings/installations/{iid}", "app_id": app_id, "target_id": account["id"],
        "target_type": account["type"], "permissions": {"contents": "write", "pull_requests": "write",
                                                         "issues": "write", "actions": "write"},
        "events": ["issue_comment"], "created_at": STAMP, "updated_at": STAMP, "single_file_name": None,
        "app_slug": slug, "suspended_by": None, "suspended_at": None,
    }


def installation_token(token: str, expires_at: str) -> dict[str, Any]:
    """An installation-token object (POST /app/installations/{id}/access_tokens)."""
    return {"token": token, "expires_at": expires_at, "repository_selection": "selected",
            "permissions": {"contents": "write", "pull_requests": "write", "issues": "write", "actions": "write"}}
