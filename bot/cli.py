"""The `arl-bot` command line: thin wrappers that read arguments and call the core."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__, config, results
from .errors import ArlError
from .git import Git
from .store import RecordStore, record_ref

Handler = Callable[[argparse.Namespace], int]


def _repo(args: argparse.Namespace) -> Git:
    return Git(Path(args.repo or "."), search_parents=True)


def _config(args: argparse.Namespace, repo: Git) -> config.Config:
    return config.load(Path(args.config) if args.config else repo.root / config.CONFIG_FILE)


def cmd_run(args: argparse.Namespace) -> int:
    """Run experiments on a loop."""
    from .loop import RunOptions, Session
    from .prbody import BodyContext, render
    from .progress import LinePrinter
    from .sandbox.none import WARNING

    repo = _repo(args)
    cfg = _config(args, repo)
    loop = cfg.loop(args.loop)
    session = Session(repo, cfg, loop, RunOptions(experiments=args.experiments, dry_run=args.dry_run,
                                                  remote=args.remote), listeners=[LinePrinter()])
    if not session.sandbox.isolated:
        session.warn(WARNING)
    summary = session.run()
    record = summary.record
    if args.dry_run:
        ctx = BodyContext(loop=loop.name, goal=loop.metric.goal, metric=loop.metric.name,
                          sandbox_warning="" if session.sandbox.isolated else WARNING)
        print("=" * 30 + " pull-request body (dry run: not posted) " + "=" * 30)
        print(render(record, ctx))
    best = record.best
    print(f"{loop.name}: {len(summary.attempts)} attempts this run, {summary.kept} kept; "
          f"best {loop.metric.name} = {best.metric if best else None}; stopped: {summary.reason}",
          file=sys.stderr)
    print(f"research branch: {loop.branch}   history: arl-bot results --loop {loop.name}", file=sys.stderr)
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    """Print the history of a loop from its record."""
    repo = _repo(args)
    name = args.loop or _only_loop(args, repo)
    store = RecordStore(repo, name)
    if store.head() is None and repo.has_remote(args.remote):
        # A fresh clone does not fetch refs outside refs/heads and refs/tags: get the record explicitly.
        repo.fetch(args.remote, [f"+{record_ref(name)}:{record_ref(name)}"])
    if args.repair:
        moved = store.repair()
        for path in moved:
            print(f"moved damaged {path} to damaged/{path} in {store.ref}")
        if not moved:
            print(f"{store.ref}: every item reads fine; nothing to repair")
        else:
            print(f"review with `git show {store.ref}`; push it with `git push origin {store.ref}`")
        return 0
    record = store.load()
    if record is None:
        raise ArlError(f"loop {name!r} has no record here or on {args.remote}",
                       hint=f"start it with `arl-bot run --loop {name}`")
    if args.diff is not None:
        if record.attempt(args.diff) is None:
            raise ArlError(f"loop {name!r} has no experiment {args.diff}",
                           hint=f"experiments run from 0 to {record.next_experiment - 1}")
        sys.stdout.write(store.diff(args.diff))
        return 0
    formatter = {"table": results.as_table, "json": results.as_json, "tsv": results.as_tsv}[args.format]
    sys.stdout.write(formatter(record) if args.format != "json" else formatter(record) + "\n")
    return 0


def _only_loop(args: argparse.Namespace, repo: Git) -> str:
    return _config(args, repo).loop(None).name


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate the current checkout once and print JSON."""
    from .evaluate import get_evaluator, measure
    from .sandbox import choose_sandbox

    repo = _repo(args)
    loop = _config(args, repo).loop(args.loop)
    sandbox = choose_sandbox(loop)
    seeds = [args.seed] if args.seed is not None else list(loop.evaluate.seeds)
    with tempfile.TemporaryDirectory(prefix="arl-eval-") as scratch:
        m = measure(get_evaluator(loop, sandbox), repo.root, seeds, Path(scratch))
    print(json.dumps({"loop": loop.name, "metric_name": loop.metric.name, "metric": m.metric,
                      "seeds": m.per_seed, "error": m.error or None, "sandbox": sandbox.name,
                      "duration_s": round(m.duration_s, 3), "log_tail": m.log[-2000:]}, indent=2))
    return 0 if m.metric is not None else 1


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of .autoresearch.yml."""
    print(json.dumps(config.json_schema(), indent=2))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Write starter files."""
    from .initcmd import init

    root = Path(args.repo or ".").resolve()
    for path in init(root, args.loop or "main"):
        print(f"wrote {path.relative_to(root)}")
    print("next: edit .autoresearch.yml and AGENT.md, commit them, then `arl-bot run --dry-run`")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand sets `handler`."""
    parser = argparse.ArgumentParser(prog="arl-bot", description="Autoresearch loops as pull requests.")
    parser.add_argument("--version", action="version", version=f"arl-bot {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--repo", help="the repository (default: the one containing the current dir)")
    common.add_argument("--config", help="config file (default: <repo>/.autoresearch.yml)")
    common.add_argument("--loop", help="loop name (default: the only loop)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run experiments on a loop")
    run.add_argument("--experiments", type=int, help="how many experiments this run (default: budget)")
    run.add_argument("--dry-run", action="store_true",
                     help="push nothing, call no GitHub API; print the PR body it would write")
    run.add_argument("--remote", default="origin", help="remote to push the branch and record to")
    run.set_defaults(handler=cmd_run)

    res = sub.add_parser("results", parents=[common], help="print a loop's history from its record")
    fmt = res.add_mutually_exclusive_group()
    fmt.add_argument("--format", choices=["table", "json", "tsv"], default="table")
    fmt.add_argument("--json", dest="format", action="store_const", const="json")
    fmt.add_argument("--tsv", dest="format", action="store_const", const="tsv")
    res.add_argument("--diff", type=int, metavar="N", help="print experiment N's diff, kept or not")
    res.add_argument("--repair", action="store_true",
                     help="move unreadable record items to damaged/ in a new record commit")
    res.add_argument("--remote", default="origin")
    res.set_defaults(handler=cmd_results)

    ev = sub.add_parser("eval", parents=[common], help="evaluate the current checkout once, print JSON")
    ev.add_argument("--seed", type=int, help="one seed instead of the configured ones")
    ev.set_defaults(handler=cmd_eval)

    init = sub.add_parser("init", parents=[common], help="write .autoresearch.yml and AGENT.md")
    init.set_defaults(handler=cmd_init)

    schema = sub.add_parser("schema", help="print the JSON Schema of .autoresearch.yml")
    schema.set_defaults(handler=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: map ArlError to its exit code and a message that says what to do."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ArlError as exc:
        print(f"arl-bot: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("arl-bot: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
