"""The config and environment forced on every git the bot runs, so that none runs repository-controlled code.

Each command gets config through GIT_CONFIG_COUNT (read after every config file): no hooks, no fsmonitor,
no submodule recursion, no pager or editor, no signing, no `ext::` transport, every filter and merge driver
the config defines emptied, and credential helpers, ssh and askpass commands taken only from system and
global config. Diffs run with `--no-ext-diff --no-textconv`. Non-network commands get no secret-looking
variables; only fetch, push and ls-remote get the token (`network_config`) and a time limit. Pure but for
reading os.environ: bot/git.py runs what `safe_command` returns.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping

NETWORK = ("fetch", "push", "ls-remote")  # the only commands that get network_config and a time limit
NETWORK_TIMEOUT_S = 600.0  # wall clock for one fetch or push; ARL_GIT_TIMEOUT overrides it
LOW_SPEED_BYTES = 1000  # an HTTP transfer slower than this (bytes/s) for LOW_SPEED_S is given up
LOW_SPEED_S = 60

# Config forced on every git the bot runs. Each value turns off a way config or the tree runs a command.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),  # a command git runs on every index read
    ("core.hooksPath", os.devnull),  # no hooks: nothing can be planted below /dev/null (`.husky` is in the tree)
    ("core.pager", "cat"),
    ("core.alternateRefsCommand", "true"),  # a shell command run during fetch when alternates exist
    ("color.ui", "false"),  # output is parsed
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("push.recurseSubmodules", "no"),
    ("diff.ignoreSubmodules", "dirty"),  # never run `git status` inside a submodule (its fsmonitor, its config)
    ("status.submoduleSummary", "false"),
    ("protocol.ext.allow", "never"),  # ext:: URLs (an insteadOf away) run a command
    ("commit.gpgSign", "false"),  # gpg.program is a command
    ("tag.gpgSign", "false"),
    ("push.gpgSign", "false"),
    ("log.showSignature", "false"),
    ("gc.auto", "0"),  # no detached `git gc` outliving the command
    ("maintenance.auto", "false"),
)
SAFE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # a missing credential fails instead of waiting for a password
    "GIT_PAGER": "cat", "PAGER": "cat", "GIT_EDITOR": "true", "GIT_SEQUENCE_EDITOR": "true",
    "LC_ALL": "C", "LANGUAGE": "C",  # errors are matched in English
}
DIFF_COMMANDS = ("diff", "show", "log")  # get --no-ext-diff --no-textconv: diff.external and drivers run commands
# Names of variables a non-network git does not need and must not hand on (GITHUB_TOKEN, API keys, the agent).
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE|_KEY$|^SSH_AUTH_SOCK$", re.IGNORECASE)
TRUSTED_SCOPES = ("system", "global", "command")  # config written by the user or the machine, never the repository

# Config only fetch, push and ls-remote get: github/gitauth.py puts the token header here for a block.
network_config: dict[str, str] = {}


def safe_command(args: list[str], env: dict[str, str] | None,
                 listing: list[tuple[str, str, str]]) -> tuple[list[str], dict[str, str]]:
    """The argv and environment to run `git <args>` with, given the config listing git sees there.

    env adds variables (GIT_INDEX_FILE, an identity); ones equal to ours are ignored, so passing a copy of
    os.environ cannot bring back what the command is not meant to have.
    """
    network = bool(args) and args[0] in NETWORK
    full = {k: v for k, v in os.environ.items() if network or not SECRET_NAME.search(k)}
    full.update({k: v for k, v in (env or {}).items() if os.environ.get(k) != v})
    full.update(SAFE_ENV)
    # core.gitProxy (git:// only) is first-match-wins, so no later config can override a repository's;
    # an empty GIT_PROXY_COMMAND can, unless the user set one.
    full.setdefault("GIT_PROXY_COMMAND", "")
    forced = list(SAFE_CONFIG) + overrides(listing)
    if network:
        forced += [("http.lowSpeedLimit", str(LOW_SPEED_BYTES)),
                   ("http.lowSpeedTime", str(int(min(LOW_SPEED_S, max(1.0, network_timeout())))))]
        forced += list(network_config.items())
    # GIT_CONFIG_PARAMETERS (set only when arl-bot itself runs under a git command) is read after
    # GIT_CONFIG_COUNT and would win over the forced values.
    full.pop("GIT_CONFIG_PARAMETERS", None)
    full.update(config_env(forced, full))
    if network:
        args = [args[0], *pack_programs(args, listing), *args[1:]]
    if args and args[0] in DIFF_COMMANDS:
        args = [args[0], "--no-ext-diff", "--no-textconv", *args[1:]]
    if args and args[0] == "status":
        args = [args[0], "--ignore-submodules=dirty", *args[1:]]
    return ["git", "--no-pager", *args], full


def locate_env() -> dict[str, str]:
    """The environment for finding a repository: no secrets, SAFE_ENV and SAFE_CONFIG, and no GIT_DIR.

    GIT_DIR left over from a calling git would override the path given; the path decides, as GitPython's Repo did.
    """
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k) and k != "GIT_DIR"}
    env.update(SAFE_ENV)
    env.pop("GIT_CONFIG_PARAMETERS", None)
    env.update(config_env(list(SAFE_CONFIG), env))
    return env


def config_env(pairs: list[tuple[str, str]], env: Mapping[str, str]) -> dict[str, str]:
    """GIT_CONFIG_COUNT/KEY/VALUE variables that add pairs after those env already has (later ones win).

    The environment rather than `-c`: values (the token) stay off the command line, keys may hold '='.
    """
    try:
        start = max(0, int(env.get("GIT_CONFIG_COUNT") or 0))
    except ValueError:
        start = 0
    added = {"GIT_CONFIG_COUNT": str(start + len(pairs))}
    for i, (key, value) in enumerate(pairs, start):
        added[f"GIT_CONFIG_KEY_{i}"] = key
        added[f"GIT_CONFIG_VALUE_{i}"] = value
    return added


def network_timeout() -> float:
    """Seconds one fetch or push may take: ARL_GIT_TIMEOUT, else NETWORK_TIMEOUT_S."""
    try:
        return float(os.environ.get("ARL_GIT_TIMEOUT") or NETWORK_TIMEOUT_S)
    except ValueError:
        return NETWORK_TIMEOUT_S


def pack_programs(args: list[str], listing: list[tuple[str, str, str]]) -> list[str]:
    """--upload-pack/--receive-pack when the repository's config names its own for this remote.

    remote.<name>.uploadpack runs on this machine for a local or file:// remote; the first value
    git reads wins, so no later config can replace it, but the command-line option can.
    """
    remote = next((a for a in args[1:] if not a.startswith("-")), "")
    name = "receivepack" if args[0] == "push" else "uploadpack"
    key = f"remote.{remote}.{name}"
    values = [(scope, value) for scope, k, value in listing if k.lower() == key.lower()]
    if not any(scope not in TRUSTED_SCOPES for scope, _ in values):
        return []
    trusted = [value for scope, value in values if scope in TRUSTED_SCOPES]
    program = trusted[0] if trusted else f"git-{name[:-4]}-pack"
    return [f"--{name[:-4]}-pack={program}"]


def parse_listing(out: str) -> list[tuple[str, str, str]]:
    """(scope, key, value) from `git config --list --show-scope -z`; a key with no value reads as true."""
    fields = out.split("\0")
    entries = []
    for scope, item in zip(fields[0::2], fields[1::2], strict=False):
        key, _, value = item.partition("\n")
        entries.append((scope, key, value if "\n" in item else "true"))
    return entries


def overrides(listing: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """Forced config for the commands that config names: drivers in any scope, network programs in the repo's."""
    forced: dict[str, str] = {}
    by_key: dict[str, list[tuple[str, str]]] = {}
    for scope, key, value in listing:
        by_key.setdefault(key, []).append((scope, value))
    for key, values in by_key.items():
        section, _, rest = key.partition(".")
        sub, _, name = rest.rpartition(".")
        section, name = section.lower(), name.lower()
        trusted = [value for scope, value in values if scope in TRUSTED_SCOPES]
        local = len(trusted) < len(values)
        if section == "filter" and sub and name in ("clean", "smudge", "process"):
            # The tree's .gitattributes picks drivers; emptied, a file is staged and checked out as it is, so
            # the commit holds the bytes that were evaluated (git-lfs files stay pointer files).
            forced[key] = ""
            forced[f"filter.{sub}.required"] = "false"
        elif section == "merge" and sub and name == "driver":
            forced[key] = "false"  # a failing driver is a conflict: merges stop, nothing runs
        elif section == "hook" and sub and name == "command":
            forced[key] = "true"  # config-defined hooks (newer git)
        elif not local:
            continue
        elif section == "credential" and name == "helper":
            # A list: an empty value clears it, then the user's own helpers again.
            for i, value in enumerate(["", *trusted]):
                forced[f"{key}\0{i}"] = value
        elif section == "core" and not sub and name == "sshcommand":
            ssh = os.environ.get("GIT_SSH")
            forced[key] = trusted[-1] if trusted else shlex.quote(ssh) if ssh else "ssh"
        elif section == "core" and not sub and name == "askpass":
            forced[key] = trusted[-1] if trusted else os.environ.get("SSH_ASKPASS", "")
    return [(key.split("\0")[0], value) for key, value in forced.items()]
