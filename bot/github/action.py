"""`arl-bot action`: the GitHub Action's entry point; reads the runner's environment, runs gate and research."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .. import commands, config, events
from ..errors import ArlError
from ..git import Git
from . import gate, research
from .client import GitHub, Retry, app_minter
from .context import Context
from .feedback import failure
from .gitauth import git_token
from .outputs import Order, annotate, write_outputs
from .runner_check import phase_problem
from .tokens import AppTokens, FixedToken, TokenSource

PHASES = ("gate", "research", "all")
TRUE = ("1", "true", "yes", "on")


def main(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> int:
    """Run the phase ARL_PHASE names; every failure is an ::error:: line and a non-zero exit code."""
    env = dict(os.environ if env is None else env)
    token = env.get("GITHUB_TOKEN", "")
    ctx: Context | None = None
    try:
        phase = (env.get("ARL_PHASE") or "all").strip()
        if phase not in PHASES:
            raise events.EventError(f"ARL_PHASE {phase[:20]!r} is not one of {', '.join(PHASES)}",
                                    hint="use gate, research or all")
        refused = phase_problem(phase, env.get("GITHUB_EVENT_NAME", ""), env.get("RUNNER_ENVIRONMENT", ""))
        if refused:
            raise events.EventError(refused, hint="set `phase: gate` in this job and add a research job")
        ctx = _context(env, cwd or Path.cwd(), token)
        source = ctx.tokens or FixedToken(token)
        source()  # App credentials: the first mint fails here, before any work, if they are wrong
        with git_token(ctx.event.server_url, source, every_s=source.check_every_s):
            return _run(ctx, phase)
    except ArlError as exc:
        message = ctx.redact(str(exc)) if ctx else str(exc).replace(token, "***") if token else str(exc)
        annotate("error", message)
        print(f"arl-bot: error: {message}", file=sys.stderr)
        _comment_failure(ctx, message)
        return exc.exit_code
    except Exception as exc:  # a bug must still fail the job loudly, never leave it green
        message = f"unexpected {type(exc).__name__}: {exc}"
        message = ctx.redact(message) if ctx else message
        annotate("error", message)
        _comment_failure(ctx, message)
        raise


def _context(env: dict[str, str], cwd: Path, token: str) -> Context:
    event = events.from_env(env)
    repo = Git(cwd, search_parents=True)
    cfg = config.load(Path(env["ARL_CONFIG"]) if env.get("ARL_CONFIG") else repo.root / config.CONFIG_FILE)
    dry_run = env.get("ARL_DRY_RUN", "").strip().lower() in TRUE
    github = None
    source: TokenSource | None = None
    app_id, app_key = env.get("ARL_GITHUB_APP_ID", "").strip(), env.get("ARL_GITHUB_APP_PRIVATE_KEY", "")
    if not dry_run:
        if not event.repository:
            raise events.EventError("GITHUB_REPOSITORY is not set", hint="run inside GitHub Actions, or set it")
        timeout = float(env.get("ARL_GITHUB_TIMEOUT") or 30)
        pace = float(env.get("ARL_GITHUB_PACE") or 1)  # 0: no pause between requests (stand-ins, tests)
        backoff = float(env.get("ARL_GITHUB_BACKOFF") or 1)  # first wait between retries, doubled each time
        retry = Retry(timeout=timeout, backoff=backoff, between_requests=0.25 * pace, between_writes=1.0 * pace)
        if app_id or app_key.strip():
            if not (app_id and app_key.strip()):
                raise events.EventError("only one of ARL_GITHUB_APP_ID and ARL_GITHUB_APP_PRIVATE_KEY is set",
                                        hint="pass both (the App's ID and its private key), or neither to use "
                                             "GITHUB_TOKEN")
            # An App's installation tokens live an hour; minted here and again before each expires, they serve
            # the API and git alike, so a run of any length keeps pushing.
            source = AppTokens(app_minter(event.repository, app_id, app_key, event.api_url, retry))
        elif token:
            source = FixedToken(token)
        else:
            raise events.EventError("GITHUB_TOKEN is empty", hint="pass the github-token input, or GitHub App "
                                    "credentials (or set ARL_DRY_RUN=true to run without GitHub)")
        github = GitHub(event.repository, source, event.api_url, retry, refresh=source.invalidate)
    secrets = tuple(s for s in (token, env.get("ANTHROPIC_API_KEY", ""), app_key.strip()) if s)
    return Context(env=env, event=event, repo=repo, config=cfg, github=github, dry_run=dry_run, secrets=secrets,
                   tokens=source)


def _run(ctx: Context, phase: str) -> int:
    if phase == "research":
        order = Order.from_env(ctx.env)
    else:
        order = gate.decide(ctx)
        write_outputs(ctx.env.get("GITHUB_OUTPUT"), order.outputs())
        if phase == "gate":
            return 0
    if not order.run:
        return 0
    return research.run(ctx, order)


def _comment_failure(ctx: Context | None, message: str) -> None:
    """Tell the person who asked, on their pull request, what failed and how to retry."""
    if ctx is None or ctx.github is None or ctx.event.kind != "comment" or not ctx.event.on_pull:
        return
    parsed = commands.parse(ctx.event.comment_body)
    if ctx.event.number is None or ctx.event.from_bot or parsed is None:
        return
    retry = parsed.line if isinstance(parsed, commands.Command) else "/autoresearch help"
    try:
        ctx.github.comment(ctx.event.number, failure(message, retry, ctx.event.run_url))
    except ArlError as exc:
        annotate("warning", f"could not comment the failure: {ctx.redact(str(exc))}")
