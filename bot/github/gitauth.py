"""Give git the token for fetch and push through the environment: never in .git/config, never on argv."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager


def token_config(server_url: str, token: str, env: MutableMapping[str, str]) -> dict[str, str]:
    """GIT_CONFIG_* variables that add the token as an HTTP header for server_url, after any already set."""
    start = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    # The header form is what actions/checkout uses; git sends it only to URLs under server_url.
    return {
        "GIT_CONFIG_COUNT": str(start + 1),
        f"GIT_CONFIG_KEY_{start}": f"http.{server_url.rstrip('/')}/.extraheader",
        f"GIT_CONFIG_VALUE_{start}": f"AUTHORIZATION: basic {basic}",
        "GIT_TERMINAL_PROMPT": "0",  # a missing or bad token fails instead of waiting for a password
    }


@contextmanager
def git_token(server_url: str, token: str) -> Iterator[None]:
    """Within the block, git commands this process runs authenticate to server_url with token.

    Agents and evaluations do not inherit it: their environment is an allowlist (bot/policy.py).
    """
    if not token or not server_url:
        yield
        return
    added = token_config(server_url, token, os.environ)
    saved = {k: os.environ.get(k) for k in added}
    os.environ.update(added)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
