"""Load and validate `.autoresearch.yml`; every error names the file, the line and the key.

The models by section (base, plugins, evaluate, guards, agent, sandbox, loop, file), reading the file
(load), its errors (errors), the host's limits (host) and the JSON Schema (schema). Every name other
modules use is importable from here. Reading a config imports pydantic and PyYAML, nothing heavier, and
builds each model's validator only when it first validates (`defer_build`).
"""

from __future__ import annotations

from ..errors import ConfigError  # `config.ConfigError`: what load and parse raise
from .agent import AgentConfig, PassEnv, PriceConfig
from .base import ALWAYS_PROTECTED, CONFIG_FILE, DAY, PID_MAX_LIMIT, TIMEOUT_MAX, Number
from .errors import config_error
from .evaluate import Evaluate, Holdout, Keep, Metric, Parse, ReadyCheck, Service
from .file import DEFAULT_ROLES, Config, GitHubSettings, Role
from .guards import NUMBER_NAME, Amount, Check, Guards, Limit
from .host import check_host
from .load import NODE_BUDGET, load, parse
from .loop import Budget, Loop, LoopSchedule, PromptConfig, StrategyConfig
from .plugins import AnyOptions, PluginOptions, open_model, plugin_options
from .sandbox import PhaseSandbox, SandboxSettings
from .schema import PLUGIN_GROUPS, json_schema

__all__ = [
    "ALWAYS_PROTECTED", "CONFIG_FILE", "DAY", "DEFAULT_ROLES", "NODE_BUDGET", "NUMBER_NAME", "PID_MAX_LIMIT",
    "PLUGIN_GROUPS", "TIMEOUT_MAX", "AgentConfig", "Amount", "AnyOptions", "Budget", "Check", "Config", "ConfigError",
    "Evaluate", "GitHubSettings", "Guards", "Holdout", "Keep", "Limit", "Loop", "LoopSchedule", "Metric", "Number",
    "Parse", "PassEnv", "PhaseSandbox", "PluginOptions", "PriceConfig", "PromptConfig", "ReadyCheck", "Role",
    "SandboxSettings", "Service", "StrategyConfig", "check_host", "config_error", "json_schema", "load", "open_model",
    "parse", "plugin_options",
]
