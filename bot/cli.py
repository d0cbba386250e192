"""The `arl-bot` command line: thin wrappers that read arguments and call the core."""

from __future__ import annotations

# Startup is part of every command's cost: this module imports only what `--version` and the parser need;
# each handler imports its own modules (pydantic, GitPython, PyGithub stay unloaded until a command needs them),
# and tests/test_cli_startup.py checks which heavy packages each command brings in.
import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import ArlError
from .sanitize import terminal_text

if TYPE_CHECKING:
    from .config import Config
    from .git import Git
    from .record import Record
    from .store import RecordStore

Handler = Callable[[argparse.Namespace], int]


def _repo(args: argparse.Namespace) -> Git:
    from .git import Git

    return Git(Path(args.repo or "."), search_parents=True)


def _config(args: argparse.Namespace, repo: Git) -> Config:
    from . import config

    return config.load(Path(args.config) if args.config else repo.root / config.CONFIG_FILE)


def cmd_run(args: argparse.Namespace) -> int:
    """Run experiments on a loop."""
    from . import config
    from .loop import RunOptions
    from .progress import choose
    from .start import DRY_RUN_TITLE, prepare_run

    repo = _repo(args)
    cfg = _config(args, repo)
    loop = cfg.loop(args.loop)
    if args.workers is not None:
        loop = loop.model_copy(update={"workers": args.workers})
    if not args.dry_run:
        from .dryruns import check_before_push

        pushing = check_before_push(repo, loop.name, args.remote, allow=args.push_dry_runs)
        if pushing:
            print(f"arl-bot: {pushing}", file=sys.stderr)
    started = prepare_run(repo, cfg, loop, RunOptions(experiments=args.experiments, dry_run=args.dry_run,
                                                      remote=args.remote), listeners=[choose(args.progress)],
                          config_path=Path(args.config) if args.config else repo.root / config.CONFIG_FILE)
    summary = started.session.run()
    record = summary.record
    if args.dry_run:
        print("=" * 30 + f" {DRY_RUN_TITLE} " + "=" * 30)
        print(terminal_text(started.dry_run_body(record)))
    best = record.best
    tried = len(summary.attempts)
    print(f"{loop.name}: {tried} attempt{'' if tried == 1 else 's'} this run, {summary.kept} kept; "
          f"best {loop.metric.name} = {best.metric if best else None}; stopped: {terminal_text(summary.reason)}",
          file=sys.stderr)
    print(f"research branch: {loop.branch}   history: arl-bot results --loop {loop.name}", file=sys.stderr)
    spent = sum(a.cost_usd for a in summary.attempts)
    if args.dry_run and spent:  # a dry run keeps results local; an LLM agent's calls are real all the same
        print(f"dry run: nothing was pushed, but the agent's API calls were real: ${spent:.4f} spent "
              f"({sum(a.tokens_in for a in summary.attempts)} tokens in, "
              f"{sum(a.tokens_out for a in summary.attempts)} out)", file=sys.stderr)
    return 0


def cmd_rebase(args: argparse.Namespace) -> int:
    """Merge the base branch into a loop's research branch, make it the base, re-measure it."""
    from . import config
    from .loop import RunOptions, Session
    from .progress import choose
    from .rebase import rebase

    repo = _repo(args)
    cfg = _config(args, repo)
    loop = cfg.loop(args.loop)
    config.check_host(cfg, loop)
    session = Session(repo, cfg, loop, RunOptions(dry_run=args.dry_run, remote=args.remote),
                      listeners=[choose(args.progress)])
    summary = rebase(session)
    if summary is None:
        print(f"{loop.name}: {loop.branch} already has its base branch's newest commit; nothing to bring in",
              file=sys.stderr)
        return 0
    attempt = summary.attempts[-1]
    print(f"{loop.name}: {terminal_text(attempt.description)}; {loop.metric.name} re-measured: {attempt.metric} "
          f"(experiment {attempt.experiment})", file=sys.stderr)
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    """Print the history of a loop from its record."""
    from . import results
    from .store import RecordStore, record_ref

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
        patch = store.diff(args.diff)
        if not patch:  # say why, rather than print nothing
            print(f"arl-bot: {results.no_diff(record, args.diff)}", file=sys.stderr)
            return 0
        # The agent wrote these lines: a terminal gets them inert, a pipe or file gets the patch as it is.
        sys.stdout.write(terminal_text(patch) if sys.stdout.isatty() else patch)
        return 0
    formatter = {"table": results.as_table, "json": results.as_json, "tsv": results.as_tsv,
                 "karpathy": results.as_karpathy}[args.format]
    sys.stdout.write(formatter(record) if args.format != "json" else formatter(record) + "\n")
    return 0


def _load_record(args: argparse.Namespace) -> tuple[RecordStore, Record]:
    """The loop's store and record, fetching the record from the remote when a fresh clone lacks it."""
    from .store import RecordStore, record_ref

    repo = _repo(args)
    name = args.loop or _only_loop(args, repo)
    store = RecordStore(repo, name)
    if store.head() is None and repo.has_remote(args.remote):
        # A fresh clone does not fetch refs outside refs/heads and refs/tags: get the record explicitly.
        repo.fetch(args.remote, [f"+{record_ref(name)}:{record_ref(name)}"])
    record = store.load()
    if record is None:
        raise ArlError(f"loop {name!r} has no record here or on {args.remote}",
                       hint=f"start it with `arl-bot run --loop {name}`")
    return store, record


def cmd_report(args: argparse.Namespace) -> int:
    """Write one self-contained HTML report of a loop."""
    from .report import write_report

    store, record = _load_record(args)
    out = write_report(record, Path(args.output), diff=store.diff)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): open it in any browser, no network needed",
          file=sys.stderr)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Write a static PNG (or SVG/PDF) chart of a loop's progress."""
    from .plot import write_plot

    _, record = _load_record(args)
    out = write_plot(record, Path(args.output))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _only_loop(args: argparse.Namespace, repo: Git) -> str:
    return _config(args, repo).loop(None).name


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate the current checkout once and print JSON."""
    from . import config, guards
    from .evaluate import get_evaluator
    from .measurer import Measurer
    from .sandbox import choose_sandbox

    repo = _repo(args)
    cfg = _config(args, repo)
    loop = cfg.loop(args.loop)
    config.check_host(cfg, loop)
    sandbox = choose_sandbox(loop)
    seeds = [args.seed] if args.seed is not None else list(loop.evaluate.seeds)
    m = Measurer(loop, get_evaluator(loop, sandbox)).measure(repo.root, seeds)  # with `services:` up
    print(json.dumps({"loop": loop.name, "metric_name": loop.metric.name, "metric": m.metric,
                      "seeds": m.per_seed, "numbers": guards.numbers(m), "error": m.error or None,
                      "sandbox": sandbox.name,
                      "duration_s": round(m.duration_s, 3), "log_tail": m.log[-2000:]}, indent=2))
    return 0 if m.metric is not None else 1


def cmd_action(args: argparse.Namespace) -> int:
    """Run as the GitHub Action: everything comes from the runner's environment (see docs/github.md)."""
    from .github.action import main as action_main

    return action_main()


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Per-sample results, worst first: from the record, or from evaluating the checkout now (--eval)."""
    from . import diagnose

    repo = _repo(args)
    loop = _config(args, repo).loop(args.loop)
    if args.eval:
        from .evaluate import get_evaluator
        from .measurer import Measurer
        from .sandbox import choose_sandbox

        m = Measurer(loop, get_evaluator(loop, choose_sandbox(loop))).measure(repo.root, list(loop.evaluate.seeds))
        if m.error:
            raise ArlError(f"the evaluation failed: {m.error}", hint="`arl-bot eval` prints its log")
        samples = diagnose.worst_first(diagnose.merge([s.samples for s in m.seeds]), loop.metric.goal)
        title = f"{loop.name}: this checkout, {loop.metric.name} {m.metric}, {len(samples)} samples"
    else:
        _, record = _load_record(args)
        if args.sample is not None:
            rows = diagnose.history(record, args.sample)
            if args.json:
                print(json.dumps({"sample": args.sample, "history": rows}, indent=2))
            else:
                print(f"sample {args.sample!r} across the loop ({len(rows)} attempts stored it):")
                for row in rows:
                    print(f"  {row['experiment']:>5}  {row['status']:<9} {row['score']!s:>12}  "
                          f"{terminal_text(str(row['error']))}")
            return 0 if rows else 1
        attempt = diagnose.latest_with_samples(record, args.experiment)
        if attempt is None or not diagnose.stored(attempt):
            raise ArlError("no per-sample results in the record" + (
                f" for experiment {args.experiment}" if args.experiment is not None else ""),
                hint="samples come from backends that return them (python, pytest, the torch tasks); "
                     "`arl-bot diagnose --eval` evaluates the checkout now")
        samples = diagnose.stored(attempt)
        total = attempt.extra.get("samples", {}).get("total", len(samples))
        title = (f"{loop.name}: experiment {attempt.experiment} ({attempt.status}), {loop.metric.name} "
                 f"{attempt.metric}, worst {len(samples)} of {total} samples")
    if args.sample is not None:
        samples = [s for s in samples if s.get("id") == args.sample]
    shown = samples[: args.top]
    if args.json:
        print(json.dumps({"title": title, "samples": shown}, indent=2))
    else:
        sys.stdout.write(diagnose.render_table(shown, title))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of .autoresearch.yml."""
    from . import config

    print(json.dumps(config.json_schema(), indent=2))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Write starter files."""
    from .initcmd import init

    root = Path(args.repo or ".").resolve()
    placeholders: list[str] = []
    written, skipped = init(root, args.loop, task=args.task, action_ref=args.action_ref,
                            workflow_only=args.workflow_only, notes=placeholders)
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    for note in placeholders:
        print(f"placeholder: {note}")
    if skipped:
        print(f"arl-bot: note: {skipped}", file=sys.stderr)
    if args.workflow_only:
        return 0
    if args.task:
        print(f"built-in task {args.task}: train.py is the baseline the agent edits; try it with `arl-bot eval`")
    print("next: edit .autoresearch.yml and AGENT.md, commit them, then `arl-bot run --dry-run`")
    print("on GitHub: add the secret ANTHROPIC_API_KEY and a self-hosted runner with the `runner:` labels "
          "(`arl-bot doctor` on the runner checks what it needs)")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check this machine can run the research job: Python, bubblewrap, disk, the runner's version."""
    from . import config
    from .github.runner_check import report

    path: Path | None = Path(args.config) if args.config else None
    if path is None:
        try:
            path = _repo(args).root / config.CONFIG_FILE
        except ArlError:
            path = None  # not in a repository: check the machine alone
    loops = list(config.load(path).loops.values()) if path is not None and path.exists() else None
    text, ok = report(loops, Path(args.runner_dir) if args.runner_dir else None)
    print(text)
    return 0 if ok else 1


def _positive(text: str) -> int:
    """A count of 1 or more, for argparse (which then names the option in its message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{value} is out of range: give 1 to 64")
    return value


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
    run.add_argument("--push-dry-runs", action="store_true",
                     help="a real run after dry runs: push their experiments too (refused without this)")
    run.add_argument("--workers", type=_positive, metavar="N",
                     help="experiments in flight at once (default: the loop's `workers`, else 1)")
    run.add_argument("--progress", choices=["auto", "status", "plain", "github"], default="auto",
                     help="status: a line redrawn in place (terminals); plain: one line per event; "
                          "github: plain with ::group:: folding (default: by where the output goes)")
    run.set_defaults(handler=cmd_run)

    reb = sub.add_parser("rebase", parents=[common],
                         help="merge the base branch (main) into a loop's research branch and re-measure it")
    reb.add_argument("--dry-run", action="store_true", help="push nothing")
    reb.add_argument("--remote", default="origin", help="remote to push the branch and record to")
    reb.add_argument("--progress", choices=["auto", "status", "plain", "github"], default="auto")
    reb.set_defaults(handler=cmd_rebase)

    res = sub.add_parser("results", parents=[common], help="print a loop's history from its record")
    fmt = res.add_mutually_exclusive_group()
    fmt.add_argument("--format", choices=["table", "json", "tsv", "karpathy"], default="table",
                     help="karpathy: autoresearch's results.tsv (commit, metric, memory_gb, status, description)")
    fmt.add_argument("--json", dest="format", action="store_const", const="json")
    fmt.add_argument("--tsv", dest="format", action="store_const", const="tsv")
    res.add_argument("--diff", type=int, metavar="N", help="print experiment N's diff, kept or not")
    res.add_argument("--repair", action="store_true",
                     help="move unreadable record items to damaged/ in a new record commit")
    res.add_argument("--remote", default="origin")
    res.set_defaults(handler=cmd_results)

    rep = sub.add_parser("report", parents=[common], help="write a self-contained HTML report of a loop")
    rep.add_argument("-o", "--output", default="report.html", help="where to write it (default: report.html)")
    rep.add_argument("--remote", default="origin")
    rep.set_defaults(handler=cmd_report)

    plot = sub.add_parser("plot", parents=[common], help="write a static chart of a loop's progress")
    plot.add_argument("-o", "--output", default="progress.png",
                      help="where to write it; .png, .svg or .pdf (default: progress.png)")
    plot.add_argument("--remote", default="origin")
    plot.set_defaults(handler=cmd_plot)

    ev = sub.add_parser("eval", parents=[common], help="evaluate the current checkout once, print JSON")
    ev.add_argument("--seed", type=int, help="one seed instead of the configured ones")
    ev.set_defaults(handler=cmd_eval)

    diag = sub.add_parser("diagnose", parents=[common], help="per-sample results, worst first")
    diag.add_argument("--top", type=int, default=20, help="how many samples to show (default 20)")
    diag.add_argument("--sample", help="one sample: its score across the loop's attempts")
    diag.add_argument("--experiment", type=int, help="that experiment instead of the current best")
    diag.add_argument("--eval", action="store_true", help="evaluate the checkout now instead of reading the record")
    diag.add_argument("--json", action="store_true", help="print JSON")
    diag.add_argument("--remote", default="origin")
    diag.set_defaults(handler=cmd_diagnose)

    init = sub.add_parser("init", parents=[common], help="write .autoresearch.yml, AGENT.md and the workflow")
    init.add_argument("--task", choices=["charlm", "digits"],
                      help="start from a built-in torch task: its train.py, config and instructions")
    init.add_argument("--action-ref", metavar="SHA",
                      help="the full commit SHA of arl-bot's action the workflow pins "
                           "(default: the commit this arl-bot was built from, where known)")
    init.add_argument("--workflow-only", action="store_true",
                      help="write only .github/workflows/autoresearch.yml")
    init.set_defaults(handler=cmd_init)

    doctor = sub.add_parser("doctor", parents=[common],
                            help="check this machine (a self-hosted runner) has what the research job needs")
    doctor.add_argument("--runner-dir", help="where the Actions runner is installed (e.g. ~/actions-runner): "
                                             "check its version too")
    doctor.set_defaults(handler=cmd_doctor)

    schema = sub.add_parser("schema", help="print the JSON Schema of .autoresearch.yml")
    schema.set_defaults(handler=cmd_schema)

    action = sub.add_parser("action", help="the GitHub Action's entry point (reads GITHUB_* and ARL_* variables)")
    action.set_defaults(handler=cmd_action)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: map ArlError to its exit code and a message that says what to do."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    from .pipes import unbroken

    try:
        with unbroken():  # `arl-bot eval | head`: the output stops, the command does not
            return handler(args)
    except ArlError as exc:
        print(f"arl-bot: error: {terminal_text(str(exc))}", file=sys.stderr)  # errors can quote agent text
        return exc.exit_code
    except KeyboardInterrupt:
        print("arl-bot: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
