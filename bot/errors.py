"""The one error hierarchy: every error carries what went wrong, where, and what to do."""

from __future__ import annotations


class ArlError(Exception):
    """Base of every error arl-bot raises on purpose; the message is for a human."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(ArlError):
    """The config file is missing, unreadable or invalid."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = path if line is None else f"{path}:{line}"
        if key:
            where = f"{where}: {key}"
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = path
        self.line = line
        self.key = key


class GitError(ArlError):
    """A git operation failed; carries the command and git's own words."""

    def __init__(self, command: str, stderr: str, *, hint: str | None = None) -> None:
        super().__init__(f"git {command} failed: {stderr.strip()}", hint=hint)
        self.command = command
        self.stderr = stderr


class PushRejectedError(GitError):
    """The remote refused a push (the branch moved, or no permission)."""


class RecordError(ArlError):
    """The record is damaged or disagrees with the research branch."""

    def __init__(self, message: str, *, where: str, hint: str | None = None) -> None:
        super().__init__(f"{where}: {message}", hint=hint)
        self.where = where


class DiskFullError(ArlError):
    """A write failed because the disk (or the user's quota) is full; carries where."""

    def __init__(self, message: str, *, path: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint or f"free space on that disk (`df -h {path}` shows it), then run again: "
                         "the loop picks up where it stopped")
        self.path = path


class LockedError(ArlError):
    """Another arl-bot process is running the same loop."""

    exit_code = 3


class PluginError(ArlError):
    """An agent, evaluator or sandbox could not be found or set up."""


class Interrupted(ArlError):
    """The run was stopped by SIGINT or SIGTERM."""

    exit_code = 130
