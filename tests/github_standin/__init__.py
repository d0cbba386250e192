"""One loopback stand-in for GitHub's REST API, shared by every test that talks to GitHub."""

from .server import WEB, Exchange, Fault, GitHubStandIn, Hold

__all__ = ["WEB", "Exchange", "Fault", "GitHubStandIn", "Hold"]
