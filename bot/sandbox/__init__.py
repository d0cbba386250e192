"""Sandboxes: where the agent and the evaluation run, and what they may touch."""

from .base import Limits, Policy, Sandbox, SandboxRequired, choose_sandbox, get_sandbox, limit_note

__all__ = ["Limits", "Policy", "Sandbox", "SandboxRequired", "choose_sandbox", "get_sandbox", "limit_note"]
