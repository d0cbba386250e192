"""Give git the token for fetch and push only: in their environment, never in .git/config, never on argv."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..git import network_config

TokenProvider = Callable[[], str]  # asked again for every use: GitHub App tokens expire and are re-minted


def token_header(server_url: str, token: str) -> tuple[str, str]:
    """The config key and value that send token as an HTTP header to URLs under server_url."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    # The header form is what actions/checkout uses; git sends it only to URLs under server_url.
    return f"http.{server_url.rstrip('/')}/.extraheader", f"AUTHORIZATION: basic {basic}"


@contextmanager
def git_token(server_url: str, token: str | TokenProvider, every_s: float = 60.0) -> Iterator[None]:
    """Within the block, the fetches and pushes this process runs authenticate to server_url with token.

    The header goes into git.network_config, which bot/git.py hands only to fetch, push and ls-remote:
    no other git process, and nothing they start, sees it. Agents and evaluations do not inherit it
    either: their environment is an allowlist (bot/policy.py).
    A provider is asked again every every_s seconds, so a git command started hours in gets a live token.
    """
    provider = token if callable(token) else (lambda: token)
    first = provider()
    if not first or not server_url:
        yield
        return
    key, value = token_header(server_url, first)
    saved = network_config.get(key)
    network_config[key] = value
    stop, lock = threading.Event(), threading.Lock()
    if callable(token):
        def refresh() -> None:
            while not stop.wait(every_s):
                try:
                    fresh = token_header(server_url, provider())[1]
                except Exception:  # a failed mint: keep the old token; the next push says why
                    continue
                with lock:
                    if not stop.is_set():  # never after the block restored what was there
                        network_config[key] = fresh
        threading.Thread(target=refresh, name="arl-git-token", daemon=True).start()
    try:
        yield
    finally:
        with lock:
            stop.set()
        if saved is None:
            network_config.pop(key, None)
        else:
            network_config[key] = saved
