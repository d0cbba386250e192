"""arl-bot: autoresearch loops as GitHub pull requests."""

__version__ = "0.1.0"
