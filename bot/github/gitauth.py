"""Give git the token for fetch and push only: in their environment, never in .git/config, never on argv."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager

from ..git import network_config


def token_header(server_url: str, token: str) -> tuple[str, str]:
    """The config key and value that send token as an HTTP header to URLs under server_url."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    # The header form is what actions/checkout uses; git sends it only to URLs under server_url.
    return f"http.{server_url.rstrip('/')}/.extraheader", f"AUTHORIZATION: basic {basic}"


@contextmanager
def git_token(server_url: str, token: str) -> Iterator[None]:
    """Within the block, the fetches and pushes this process runs authenticate to server_url with token.

    The header goes into git.network_config, which bot/git.py hands only to fetch, push and ls-remote:
    no other git process, and nothing they start, sees it. Agents and evaluations do not inherit it
    either: their environment is an allowlist (bot/policy.py).
    """
    if not token or not server_url:
        yield
        return
    key, value = token_header(server_url, token)
    saved = network_config.get(key)
    network_config[key] = value
    try:
        yield
    finally:
        if saved is None:
            network_config.pop(key, None)
        else:
            network_config[key] = saved
