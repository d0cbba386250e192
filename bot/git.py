"""The git adapter: the only module that runs git (bot/gitsafe.py makes every such git run no repository code).

`Git` at one repository or worktree: plumbing (`run`, with the forced config and environment), refs moved by
compare-and-swap, diffs, and fetch and push; objects written and read in-process are bot/gitobjects.py's
(`Git.objects`), the research worktree's links bot/worktrees.py's.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import process, safefile, treecheck, worktrees
from .errors import GitError, PushRejectedError
from .gitobjects import BLOB_MODE, TREE_MODE, Objects, identity_env
from .gitsafe import (
    NETWORK,
    SAFE_CONFIG,
    SAFE_ENV,
    SECRET_NAME,
    config_env,
    locate_env,
    network_config,
    network_timeout,
    parse_listing,
    safe_command,
)
from .names import BOT_REFS

# What other modules import from here; the forced config's names stay importable from bot.git as before.
__all__ = [
    "BLOB_MODE", "GITLINK_MODE", "SAFE_CONFIG", "SAFE_ENV", "SECRET_NAME", "TRAILER_PREFIX", "TREE_MODE", "ZERO_SHA",
    "Change", "Git", "config_env", "identity_env", "network_config", "network_timeout",
]

ZERO_SHA = "0" * 40
GITFILE_BYTES = 4096  # a worktree's `.git` file names its gitdir: a line
GITLINK_MODE = "160000"
TRAILER_PREFIX = "Autoresearch-"


@dataclass(frozen=True)
class Change:
    """One changed path in a diff: status is git's letter (A, M, D, R, T)."""

    status: str
    path: str
    old_path: str | None = None


class Git:
    """A repository or worktree at one path."""

    def __init__(self, path: str | Path, *, search_parents: bool = False) -> None:
        self.root, self.common_dir = _locate(Path(path), search_parents)
        self._config: list[tuple[str, str, str]] | None = None  # (scope, key, value), read when first needed
        self._config_stamp: tuple[object, ...] = ()  # the config files' stat when _config was read
        self._attributes_in_tree = True  # until hazards() has looked: whether a `.gitattributes` is in the tree
        self._gitlinks: dict[str, list[str]] = {}
        self.objects = Objects(self.root, self.common_dir, self.command)  # written and read in-process

    # -- plumbing -------------------------------------------------------------------------------
    def run(self, *args: str, env: dict[str, str] | None = None, strip: bool = True,
            stdin: bytes | None = None) -> str:
        """Run a git subcommand here and return its stdout; raise GitError with git's words.

        env adds variables (GIT_INDEX_FILE, an identity); ones equal to ours are ignored, so passing
        a copy of os.environ cannot bring back what the command is not meant to have.
        """
        network = bool(args) and args[0] in NETWORK
        argv, full_env = self.command(list(args), env)
        if network:
            return self._run_network(argv, full_env, args, strip)
        if stdin is None:
            done = subprocess.run(argv, cwd=self.root, env=full_env, stdin=subprocess.DEVNULL, capture_output=True)
        else:
            done = subprocess.run(argv, cwd=self.root, env=full_env, input=stdin, capture_output=True)
        if done.returncode != 0:
            raise GitError(" ".join(args[:3]), done.stderr.decode("utf-8", "replace").strip())
        return _text(done.stdout, strip)

    def command(self, args: list[str], env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
        """The argv and environment the bot runs `git <args>` with (bot/gitsafe.py)."""
        return safe_command(args, env, self._listing())

    def _run_network(self, argv: list[str], env: dict[str, str], args: tuple[str, ...], strip: bool) -> str:
        # Own process group and a wall clock: a remote that accepts and never answers must not hang the run.
        limit = network_timeout()
        done = process.run(argv, cwd=self.root, env=env, timeout=limit)
        what = " ".join(args[:3])
        # curl gives up first when http.lowSpeedTime is below the wall clock: the same cause, the same message.
        if done.timed_out or "Operation too slow" in done.stderr:
            remote = next((a for a in args[1:] if not a.startswith("-")), "")
            raise GitError(f"{args[0]} {remote}",
                           f"{remote} ({self._remote_url(remote)}) did not answer within {limit:g} s",
                           hint=f"check that the remote is reachable (`git ls-remote {remote}`), the network and any "
                           "proxy; ARL_GIT_TIMEOUT sets the limit in seconds")
        if not done.ok:
            cls = PushRejectedError if args[0] == "push" else GitError
            raise cls(what, done.stderr.strip())
        return done.stdout[:-1] if strip and done.stdout.endswith("\n") else done.stdout

    def _remote_url(self, remote: str) -> str:
        """Where remote points, without any user or password in it."""
        try:
            url = self.run("remote", "get-url", remote)
        except GitError:
            url = remote  # a URL given in place of a remote's name
        parts = urlsplit(url)
        if parts.netloc and "@" in parts.netloc:
            url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
        return url

    def _listing(self) -> list[tuple[str, str, str]]:
        """Every config entry git sees here, with its scope (reading config runs nothing)."""
        if self._config is None:
            self._config_stamp = _config_stamp(self.root, self.common_dir)  # before: a change while we read
            out = subprocess.run(["git", "--no-pager", "config", "--list", "--show-scope", "-z"], cwd=self.root,
                                 env={k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)},
                                 stdin=subprocess.DEVNULL, capture_output=True).stdout
            self._config = parse_listing(out.decode("utf-8", "surrogateescape"))
        return self._config

    def rev(self, ref: str) -> str | None:
        """The SHA ref points at, or None when it does not exist."""
        if ref.startswith(BOT_REFS):
            # The loop asks for its own refs several times an attempt: a loose ref is a file to read, not a
            # git process to start. Only the bot moves these refs, always to commits; a packed one asks git.
            loose = self._loose_ref(ref)
            if loose is not None:
                return loose
        try:
            return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        except GitError:
            return None

    def _loose_ref(self, ref: str) -> str | None:
        try:
            text = (self.common_dir / ref).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if len(text) == 40 and all(c in "0123456789abcdef" for c in text) else None

    def ref_value(self, ref: str) -> str | None:
        """What a full ref name points at; reads a loose ref file directly, asks git otherwise."""
        return self._loose_ref(ref) or self.rev(ref)  # a packed or symbolic ref: let git resolve it

    def close(self) -> None:
        """End the object reader, if one was started (it also ends by itself when this process does)."""
        self.objects.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def tree_entries(self, ref: str, folder: str = "") -> list[tuple[str, str]]:
        """(path, blob sha) of every file under folder in ref's tree, recursively."""
        args = ["ls-tree", "-r", "-z", ref]
        if folder:
            args += ["--", folder]
        out = self.run(*args, strip=False)
        entries = []
        for item in out.split("\0"):
            if item:
                meta, path = item.split("\t", 1)
                entries.append((path, meta.split()[2]))
        return entries

    def list_tree(self, treeish: str) -> dict[str, tuple[str, str]]:
        """name -> (mode, sha) of one tree level."""
        entries: dict[str, tuple[str, str]] = {}
        for item in self.run("ls-tree", "-z", treeish, strip=False).split("\0"):
            if item:
                meta, name = item.split("\t", 1)
                mode, kind, sha = meta.split()
                # ls-tree prints subtrees as 040000, but a tree object stores 40000.
                entries[name] = (TREE_MODE if kind == "tree" else mode, sha)
        return entries

    # -- the research worktree (bot/worktrees.py) --------------------------------------------------
    def research_worktree(self, path: Path, commit: str) -> Git:
        """A worktree of this repository at path with HEAD detached at commit: reused, repaired or made anew."""
        return worktrees.research_worktree(self, path, commit)

    def worktree_link(self, path: Path) -> str:
        """How the worktree at path is linked: "ours", "stale", "foreign" or "absent" (bot/worktrees.py)."""
        return worktrees.worktree_link(self, path)

    # -- state of the user's checkout -------------------------------------------------------------
    def current_branch(self) -> str | None:
        """The checked-out branch, or None when HEAD is detached."""
        try:
            return self.run("symbolic-ref", "--quiet", "--short", "HEAD")
        except GitError:
            return None

    def gitlinks(self, commit: str) -> list[str]:
        """Submodule paths (gitlinks) in commit's tree."""
        if commit in self._gitlinks:
            return self._gitlinks[commit]
        links = []
        for item in self.run("ls-tree", "-r", "-z", commit, strip=False).split("\0"):
            if item.startswith(GITLINK_MODE + " "):
                links.append(item.split("\t", 1)[1])
        if re.fullmatch(r"[0-9a-f]{40}", commit):  # a name like HEAD moves; a SHA's tree never changes
            self._gitlinks[commit] = links
        return links

    def hazards(self, commit: str) -> list[str]:
        """Nested `.git` entries and files in submodule folders here (treecheck.hazards), before git looks."""
        found, self._attributes_in_tree = treecheck.scan(self.root, self.gitlinks(commit))
        return found

    def dirty(self) -> bool:
        """Whether there are uncommitted changes or untracked files."""
        return bool(self.run("status", "--porcelain"))

    def exclude(self, pattern: str) -> None:
        """Hide pattern from `git status` in this clone only (.git/info/exclude, never committed)."""
        path = self.common_dir / "info" / "exclude"
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if pattern not in current.splitlines():
            path.parent.mkdir(parents=True, exist_ok=True)
            prefix = "" if not current or current.endswith("\n") else "\n"
            path.write_text(f"{current}{prefix}{pattern}\n", encoding="utf-8")

    def has_remote(self, name: str = "origin") -> bool:
        """Whether a remote called name is configured."""
        return name in self.run("remote").split()

    # -- the research worktree -------------------------------------------------------------------
    def stage_all(self) -> None:
        """Stage every change, untracked files included (ignored files stay out). Check hazards() first."""
        # The first git command after an agent ran: read the config again if the agent could have changed it
        # (with `sandbox: none`; the sandboxes hide the git directory). Its files' stat says so without a process.
        if self._config is not None and (self._includes() or
                                         _config_stamp(self.root, self.common_dir) != self._config_stamp):
            self._config = None
        self.run("add", "--all", "--", ".")
        # A `.gitattributes` the agent writes can still make `git add` convert (`text`/`eol` line endings,
        # `ident`, `working-tree-encoding`): write the staged files back as a checkout of the commit will
        # have them, so what is evaluated is what the kept commit holds.
        if not self._may_convert():
            return
        out = self.run("diff", "--cached", "--name-only", "--diff-filter=AMT", "-z", "--no-renames", "HEAD",
                       strip=False)
        paths = [p for p in out.split("\0") if p]
        for path in paths:  # checkout-index leaves alone a file whose stat the index already has
            (self.root / path).unlink(missing_ok=True)
        for i in range(0, len(paths), 500):  # a bounded command line
            self.run("checkout-index", "--index", "--", *paths[i : i + 500])

    def _includes(self) -> bool:
        """Whether the config includes other files (their places and conditions are git's to work out)."""
        return any(key.lower().startswith(("include.", "includeif.")) for _, key, _ in self._listing())

    def _may_convert(self) -> bool:
        """Whether `git add` could change bytes here: attributes anywhere, or line-ending config."""
        if self._attributes_in_tree or (self.common_dir / "info" / "attributes").exists():
            return True
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        if os.path.exists(os.path.join(xdg, "git", "attributes")):
            return True
        return any(key in ("core.autocrlf", "core.eol", "core.attributesfile") for _, key, _ in self._listing())

    def staged_changes(self, against: str = "HEAD") -> list[Change]:
        """What the index changes relative to a commit."""
        out = self.run("diff", "--cached", "--name-status", "-z", "--no-renames", against, strip=False)
        fields = [f for f in out.split("\0") if f]
        return [Change(fields[i][0], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]

    def staged_diff(self, against: str = "HEAD") -> tuple[list[Change], str]:
        """staged_changes and staged_patch from one git process (an experiment asks for both)."""
        # --patch-with-raw -z: each change as `:<modes> <shas> <status>` NUL path NUL, an empty field, then
        # the patch, byte for byte what `diff --binary` prints (-z changes only the raw part).
        out = self.run("diff", "--cached", "--patch-with-raw", "-z", "--binary", "--no-renames", against, strip=False)
        changes: list[Change] = []
        at = 0
        while out.startswith(":", at):
            header_end = out.index("\0", at)
            path_end = out.index("\0", header_end + 1)
            changes.append(Change(out[header_end - 1], out[header_end + 1 : path_end]))
            at = path_end + 1
        return changes, out[at + 1 :] if changes else ""

    def staged_patch(self, against: str = "HEAD") -> str:
        """The staged change as a patch (binary files included)."""
        return self.run("diff", "--cached", "--binary", against, strip=False)

    def restore_paths(self, commit: str, paths: list[str]) -> None:
        """Make paths in the working tree and index exactly as in commit (absent there: deleted)."""
        present = {p for p, _ in self.tree_entries(commit)} if paths else set()
        keep = [p for p in paths if p in present]
        gone = [p for p in paths if p not in present]
        literal = {"GIT_LITERAL_PATHSPECS": "1"}  # a file named `eval/x*.txt` must not also match eval/x1.txt
        if keep:
            self.run("checkout", commit, "--", *keep, env=literal)
        for path in gone:
            self.run("rm", "--cached", "--quiet", "--ignore-unmatch", "--", path, env=literal)
            target = self.root / path
            if target.is_file() or target.is_symlink():
                target.unlink()

    def write_tree(self) -> str:
        """The tree object of what is staged."""
        return self.run("write-tree")

    def commit_tree(self, tree: str, parent: str, message: str, trailers: dict[str, str],
                    merged: list[str] | None = None) -> str:
        """Make a commit of tree on parent (merged: further parents) with the bot's trailers, touching no ref."""
        lines = [f"{TRAILER_PREFIX}{key}: {value}" for key, value in trailers.items()]
        return self.objects.store_commit(tree, [parent, *(merged or [])], message.strip() + "\n\n" + "\n".join(lines))

    def move_ref(self, ref: str, new: str, old: str | None) -> None:
        """Point ref at new only if it still points at old (None: only if it does not exist)."""
        self.run("update-ref", ref, new, old or ZERO_SHA)

    def set_refs(self, targets: dict[str, str]) -> None:
        """Point each ref at its SHA, unconditionally, in one git process; refs already there are left alone."""
        moves = [f"update {ref}\0{sha}\0\0" for ref, sha in targets.items() if self.rev(ref) != sha]
        if moves:
            self.run("update-ref", "--stdin", "-z", stdin="".join(moves).encode())

    def changed_between(self, old: str, new: str) -> list[str]:
        """Paths that differ between two commits."""
        out = self.run("diff", "--name-only", "--no-renames", "-z", old, new, strip=False)
        return [p for p in out.split("\0") if p]

    def clean_ignored(self) -> None:
        """Remove ignored files: what is evaluated is exactly what would be committed."""
        self.run("clean", "-ffdXq")

    def reset_hard(self, commit: str) -> None:
        """Throw away every change, ignored and untracked files included, back to commit.

        For the bot's worktree only: nested repositories and anything in a submodule's folder are
        deleted first, by path, so that no git command ever looks inside them.
        """
        self._scrub(commit)
        self.run("reset", "--quiet", "--hard", commit)
        self.run("clean", "-ffdxq")

    def checkout_tree(self, commit: str) -> None:
        """Make the index and files commit's, leaving HEAD and the checked-out branch where they are."""
        self._scrub(commit)
        self.run("read-tree", "--reset", "-u", commit)
        self.run("clean", "-ffdxq")

    def _scrub(self, commit: str) -> None:
        treecheck.remove(self.root, self.hazards(commit))

    def commit_trailers(self, branch: str, stop_at: str) -> list[tuple[str, str, dict[str, str]]]:
        """(sha, subject, trailers) of the commits on branch after stop_at that carry the bot's trailers."""
        fmt = "%H%x00%s%x00%(trailers:only,unfold)%x1e"
        out = self.run("log", f"--format={fmt}", f"{stop_at}..{branch}", strip=False)
        commits = []
        for chunk in out.split("\x1e"):
            chunk = chunk.strip("\n")
            if not chunk:
                continue
            sha, _, rest = chunk.partition("\0")
            subject, _, block = rest.partition("\0")
            trailers = {}
            for line in block.splitlines():
                key, sep, value = line.partition(": ")
                if sep and key.startswith(TRAILER_PREFIX):
                    trailers[key.removeprefix(TRAILER_PREFIX)] = value.strip()
            if trailers:
                commits.append((sha.strip(), subject, trailers))
        return commits

    def merge_trees(self, ours: str, theirs: str) -> str | None:
        """The tree of a clean three-way merge of two commits, or None when they conflict."""
        try:
            return self.run("merge-tree", "--write-tree", "--no-messages", ours, theirs).splitlines()[0]
        except GitError:
            return None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether ancestor is reachable from descendant."""
        try:
            self.run("merge-base", "--is-ancestor", ancestor, descendant)
        except GitError:
            return False
        return True

    # -- remote -----------------------------------------------------------------------------------
    def fetch(self, remote: str, refspecs: list[str]) -> None:
        """Fetch refspecs; a ref missing on the remote is not an error."""
        for spec in refspecs:
            try:
                self.run("fetch", "--quiet", "--no-tags", remote, spec)
            except GitError as exc:
                if "couldn't find remote ref" not in exc.stderr:
                    raise

    def push(self, remote: str, refspecs: list[str]) -> None:
        """Push refspecs atomically and never by force: all land or none do."""
        self.run("push", "--quiet", "--atomic", "--porcelain", remote, *refspecs)


def _config_stamp(root: Path, common_dir: Path) -> tuple[object, ...]:
    """The stat of every file git reads config from in the worktree at root, and of the links leading to them.

    Equal stamps mean the same config (less any include, which the caller checks): a write changes a file's
    ctime, which no one but the kernel sets, so restoring the mtime does not hide it. A missing file is
    stamped too, so one created later changes the stamp.
    """
    gitdir = common_dir
    with contextlib.suppress(safefile.UntrustedFileError):  # a folder, a link, a FIFO: git reads none of these
        text = safefile.text_untrusted(root, ".git", GITFILE_BYTES).strip()
        if text.startswith("gitdir:"):
            gitdir = root / text.removeprefix("gitdir:").strip()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    files = [root / ".git", gitdir / "commondir", common_dir / "config", gitdir / "config.worktree",
             Path.home() / ".gitconfig", xdg / "git" / "config",
             Path(os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig")]
    if os.environ.get("GIT_CONFIG_GLOBAL"):
        files.append(Path(os.environ["GIT_CONFIG_GLOBAL"]))
    return tuple((_stat(path, follow=False), _stat(path, follow=True)) for path in files)


def _stat(path: Path, *, follow: bool) -> tuple[int, ...] | None:
    try:
        st = os.stat(path, follow_symlinks=follow)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _locate(path: Path, search_parents: bool) -> tuple[Path, Path]:
    """(work tree root, common git dir) of the repository at path, as git itself finds them.

    One `git rev-parse` (reading config runs nothing; the forced config applies as everywhere) rather
    than GitPython's Repo, whose import alone runs `git version` and costs ~40 ms of every command's start.
    """
    not_repo = GitError("rev-parse", f"{path} is not inside a git repository",
                        hint="run arl-bot from a clone of your project (git init && git commit first)")
    if not path.is_dir():
        raise not_repo
    env = locate_env()
    if not search_parents:  # this folder or nothing: git stops before its parent
        parent = str(path.resolve().parent)
        env["GIT_CEILING_DIRECTORIES"] = os.pathsep.join(filter(None, (env.get("GIT_CEILING_DIRECTORIES"), parent)))
    done = subprocess.run(["git", "--no-pager", "rev-parse", "--is-bare-repository", "--path-format=absolute",
                           "--git-common-dir", "--show-toplevel"], cwd=path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True)
    lines = done.stdout.decode("utf-8", "surrogateescape").splitlines()
    if done.returncode != 0 or len(lines) != 3:
        if lines[:1] == ["true"]:
            raise GitError("rev-parse", f"{path} is a bare repository", hint="run it in a clone")
        if b"safe.directory" in done.stderr:  # git refuses a repository another user owns: say so, not "no repo"
            raise GitError("rev-parse", f"{path} belongs to another user, and git refuses to work in it",
                           hint=f"run arl-bot as the repository's owner, or trust it with "
                                f"`git config --global --add safe.directory {path.resolve()}`")
        raise not_repo
    return Path(lines[2]).resolve(), Path(lines[1]).resolve()


def _text(data: bytes, strip: bool) -> str:
    text = data.decode("utf-8", "surrogateescape")
    return text[:-1] if strip and text.endswith("\n") else text
