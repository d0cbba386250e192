"""Agents: what edits the working tree in each experiment."""

from .base import Agent, AgentResult, AgentTask, get_agent

__all__ = ["Agent", "AgentResult", "AgentTask", "get_agent"]
