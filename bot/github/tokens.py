"""Where the GitHub token comes from: the job's fixed GITHUB_TOKEN, or GitHub App tokens minted and refreshed here.

One source serves the API client and git's pushes alike (bot/github/gitauth.py takes the same callable), so a run
that outlives a token keeps pushing and updating its pull request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MARGIN_S = 600.0  # refresh an installation token (1 h) this long before it expires
LIFETIME_SHARE = 0.5  # ...or after half its life, whichever comes first (short-lived tokens in tests)


@dataclass
class FixedToken:
    """The job's GITHUB_TOKEN (or a personal token): one value for the whole run, nothing to refresh."""

    value: str
    app: bool = field(default=False, init=False)

    def __call__(self) -> str:
        """The token."""
        return self.value

    def invalidate(self) -> bool:
        """A fixed token cannot be replaced: a 401 stays a 401."""
        return False

    @property
    def issued(self) -> tuple[str, ...]:
        """Every value handed out (to redact from messages)."""
        return (self.value,) if self.value else ()

    @property
    def check_every_s(self) -> float:
        """How often a holder should ask again (never changes)."""
        return 3600.0


class AppTokens:
    """Installation tokens of a GitHub App, minted on first use and again before each expires.

    mint() returns (token, expires_at as time.time()). Thread-safe: the pull-request poster, the loop and the
    git refresher ask at once. A 401 calls invalidate(), so the next call mints anew (a token revoked early).
    """

    app = True

    def __init__(self, mint: Callable[[], tuple[str, float]], clock: Callable[[], float] = time.time) -> None:
        self._mint = mint
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._issued: list[str] = []

    def __call__(self) -> str:
        """A token with time left on it."""
        with self._lock:
            now = self._clock()
            if not self._token or now >= self._refresh_at:
                token, expires_at = self._mint()
                lifetime = max(0.0, expires_at - now)
                self._token, self._expires_at = token, expires_at
                self._refresh_at = expires_at - min(MARGIN_S, lifetime * LIFETIME_SHARE)
                self._issued.append(token)
            return self._token

    def invalidate(self) -> bool:
        """Forget the current token (GitHub said it is bad); the next call mints another."""
        with self._lock:
            self._token = ""
            return True

    @property
    def issued(self) -> tuple[str, ...]:
        """Every token minted so far (to redact from messages)."""
        with self._lock:
            return tuple(self._issued)

    @property
    def mints(self) -> int:
        """How many tokens were minted."""
        with self._lock:
            return len(self._issued)

    @property
    def check_every_s(self) -> float:
        """How often a holder of a copy (git's environment) should ask again: well inside the refresh margin."""
        with self._lock:
            margin = self._expires_at - self._refresh_at
        return max(0.05, min(60.0, margin / 5)) if margin > 0 else 60.0


TokenSource = FixedToken | AppTokens
