"""The git adapter: the only module that runs git, and every git it runs runs no repository-controlled code.

Each command gets config forced through GIT_CONFIG_COUNT (read after every config file): no hooks, no
fsmonitor, no submodule recursion, no pager or editor, no signing, no `ext::` transport, every filter and
merge driver the config defines emptied, and credential helpers, ssh and askpass commands taken only from
system and global config. Diffs run with `--no-ext-diff --no-textconv`. Non-network commands get no
secret-looking variables; only fetch, push and ls-remote get the token (`network_config`) and a time limit.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import process, treecheck
from .errors import GitError, PushRejectedError

ZERO_SHA = "0" * 40
TREE_MODE = "40000"
BLOB_MODE = "100644"
GITLINK_MODE = "160000"
TRAILER_PREFIX = "Autoresearch-"

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


def identity_env() -> dict[str, str]:
    """The environment for commits the bot makes: the user's identity if set, else the bot's."""
    env = dict(os.environ)
    env.setdefault("GIT_AUTHOR_NAME", "arl-bot")
    env.setdefault("GIT_AUTHOR_EMAIL", "arl-bot@users.noreply.github.com")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    return env


def _ident(text: str) -> str:
    # A name or email with '<', '>' or a newline would corrupt the commit header.
    return "".join(ch for ch in text if ch not in "<>\n") or "arl-bot"


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
        self._loose: Any = None  # gitdb's LooseObjectDB, made when the first object is written
        self._config: list[tuple[str, str, str]] | None = None  # (scope, key, value), read when first needed
        self._attributes_in_tree = True  # until hazards() has looked: whether a `.gitattributes` is in the tree
        self._gitlinks: dict[str, list[str]] = {}
        self._cat: subprocess.Popen[bytes] | None = None
        self._cat_lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------------
    def run(self, *args: str, env: dict[str, str] | None = None, strip: bool = True) -> str:
        """Run a git subcommand here and return its stdout; raise GitError with git's words.

        env adds variables (GIT_INDEX_FILE, an identity); ones equal to ours are ignored, so passing
        a copy of os.environ cannot bring back what the command is not meant to have.
        """
        network = bool(args) and args[0] in NETWORK
        argv, full_env = self.command(list(args), env)
        if network:
            return self._run_network(argv, full_env, args, strip)
        done = subprocess.run(argv, cwd=self.root, env=full_env, stdin=subprocess.DEVNULL, capture_output=True)
        if done.returncode != 0:
            raise GitError(" ".join(args[:3]), done.stderr.decode("utf-8", "replace").strip())
        return _text(done.stdout, strip)

    def command(self, args: list[str], env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
        """The argv and environment the bot runs `git <args>` with (see the module docstring)."""
        network = bool(args) and args[0] in NETWORK
        full = {k: v for k, v in os.environ.items() if network or not SECRET_NAME.search(k)}
        full.update({k: v for k, v in (env or {}).items() if os.environ.get(k) != v})
        full.update(SAFE_ENV)
        # core.gitProxy (git:// only) is first-match-wins, so no later config can override a repository's;
        # an empty GIT_PROXY_COMMAND can, unless the user set one.
        full.setdefault("GIT_PROXY_COMMAND", "")
        listing = self._listing()
        forced = list(SAFE_CONFIG) + _overrides(listing)
        if network:
            forced += [("http.lowSpeedLimit", str(LOW_SPEED_BYTES)),
                       ("http.lowSpeedTime", str(int(min(LOW_SPEED_S, max(1.0, network_timeout())))))]
            forced += list(network_config.items())
        # GIT_CONFIG_PARAMETERS (set only when arl-bot itself runs under a git command) is read after
        # GIT_CONFIG_COUNT and would win over the forced values.
        full.pop("GIT_CONFIG_PARAMETERS", None)
        full.update(config_env(forced, full))
        if network:
            args = [args[0], *_pack_programs(args, listing), *args[1:]]
        if args and args[0] in DIFF_COMMANDS:
            args = [args[0], "--no-ext-diff", "--no-textconv", *args[1:]]
        if args and args[0] == "status":
            args = [args[0], "--ignore-submodules=dirty", *args[1:]]
        return ["git", "--no-pager", *args], full

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
            out = subprocess.run(["git", "--no-pager", "config", "--list", "--show-scope", "-z"], cwd=self.root,
                                 env={k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)},
                                 stdin=subprocess.DEVNULL, capture_output=True).stdout
            self._config = _parse_listing(out.decode("utf-8", "surrogateescape"))
        return self._config

    def rev(self, ref: str) -> str | None:
        """The SHA ref points at, or None when it does not exist."""
        try:
            return self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        except GitError:
            return None

    def _store(self, kind: bytes, data: bytes) -> str:
        # gitdb's loose-object writer runs in-process; GitPython's own odb spawns `git hash-object`.
        # Imported here: commands that only read (`results`) never pay for it.
        from gitdb import LooseObjectDB  # type: ignore[import-untyped]  # gitdb ships no type hints
        from gitdb.base import IStream  # type: ignore[import-untyped]

        if self._loose is None:
            self._loose = LooseObjectDB(str(self.common_dir / "objects"))
        stream = self._loose.store(IStream(kind, len(data), BytesIO(data)))
        return stream.hexsha.decode() if isinstance(stream.hexsha, bytes) else str(stream.hexsha)

    def ref_value(self, ref: str) -> str | None:
        """What a full ref name points at; reads a loose ref file directly, asks git otherwise."""
        try:
            text = (self.common_dir / ref).read_text(encoding="ascii").strip()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return self.rev(ref)
        return text if len(text) == 40 else self.rev(ref)  # a symbolic ref: let git resolve it

    def store_blob(self, data: bytes) -> str:
        """Write a blob into the object database in-process (no git subprocess) and return its SHA."""
        return self._store(b"blob", data)

    def store_tree(self, entries: dict[str, tuple[str, str]]) -> str:
        """Write a tree of name -> (mode, sha) in-process; mode "40000" marks a subtree."""
        def order(name: str) -> bytes:  # git sorts a subtree as if its name ended in "/"
            return (name + "/" if entries[name][0] == TREE_MODE else name).encode()

        body = b"".join(
            f"{entries[name][0]} {name}".encode() + b"\0" + bytes.fromhex(entries[name][1])
            for name in sorted(entries, key=order)
        )
        return self._store(b"tree", body)

    def store_commit(self, tree: str, parents: list[str], message: str) -> str:
        """Write a commit in-process, as the bot (or GIT_AUTHOR_*/GIT_COMMITTER_* when set)."""
        env = identity_env()
        stamp = f"{int(time.time())} +0000"
        author = f"{_ident(env['GIT_AUTHOR_NAME'])} <{_ident(env['GIT_AUTHOR_EMAIL'])}> {stamp}"
        committer = f"{_ident(env['GIT_COMMITTER_NAME'])} <{_ident(env['GIT_COMMITTER_EMAIL'])}> {stamp}"
        head = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents)
        text = f"{head}author {author}\ncommitter {committer}\n\n{message.rstrip()}\n"
        return self._store(b"commit", text.encode())

    def read_blobs(self, shas: list[str]) -> list[bytes]:
        """Read many blobs in-process."""
        # Our own long-lived `git cat-file --batch`, not GitPython's: that one would inherit all of os.environ.
        with self._cat_lock:
            if self._cat is None or self._cat.poll() is not None:
                argv, env = self.command(["cat-file", "--batch"])
                self._cat = subprocess.Popen(argv, cwd=self.root, env=env, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            cat = self._cat
            assert cat.stdin is not None and cat.stdout is not None
            blobs = []
            for sha in shas:  # one at a time: both pipes stay drained whatever the sizes
                cat.stdin.write(sha.encode("ascii") + b"\n")
                cat.stdin.flush()
                header = cat.stdout.readline().split()
                if len(header) != 3:
                    raise GitError("cat-file --batch", f"object {sha} is missing: {b' '.join(header).decode()}")
                blobs.append(cat.stdout.read(int(header[2])))
                cat.stdout.read(1)  # the newline after each object
            return blobs

    def close(self) -> None:
        """End the object reader, if one was started (it also ends by itself when this process does)."""
        with self._cat_lock:
            if self._cat is not None:
                if self._cat.stdin is not None:
                    self._cat.stdin.close()
                self._cat.wait()
                self._cat = None

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
    def research_worktree(self, path: Path, commit: str) -> Git:
        """A worktree of this repository at path with HEAD detached at commit: reused, repaired or made anew.

        Detached, so the research branch is checked out nowhere and the user can `git checkout` it; the
        loop moves the branch itself, by compare-and-swap. A worktree whose link is stale (the repository
        was moved) is repaired with `git worktree repair <path>`; one whose `.git` names another
        repository's gitdir (the repository was copied) is made anew, and the other clone's files are
        never touched (a repair would rewrite its link to point here).
        """
        path = Path(os.path.abspath(path))
        if path.resolve() != path:  # `.arl-bot` linked to another clone's: deleting or writing would reach it
            raise GitError("worktree add", f"{path} leads to {path.resolve()} through a link, and arl-bot never "
                           "deletes or writes another folder through one",
                           hint=f"remove the link (`rm {path.parent.parent}`); arl-bot makes its worktree there itself")
        state = self.worktree_link(path)
        if state == "stale":
            # Only ever with the path: a bare `repair` also rewrites links of worktrees it finds elsewhere.
            # When it cannot mend the link the worktree is made anew below.
            with contextlib.suppress(GitError):
                self.run("worktree", "repair", str(path))
            state = self.worktree_link(path)
        self._forget_foreign_entries(path)
        if state != "ours":
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.exists():
                shutil.rmtree(path)  # our own hidden folder: a copy's files, or what a dead worktree left
            self.run("worktree", "prune")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.run("worktree", "add", "--quiet", "--force", "--detach", str(path), commit)
        tree = Git(path)
        # Detach a worktree an older arl-bot left with the branch checked out (git would refuse the user's checkout).
        tree.run("update-ref", "--no-deref", "HEAD", commit)
        return tree

    def worktree_link(self, path: Path) -> str:
        """How the worktree at path is linked: "ours", "stale" (a gitdir that is gone), "foreign" or "absent".

        "ours": its `.git` file names a gitdir in this repository's worktrees/ whose `gitdir` file names
        it back. "foreign": it names a gitdir that exists elsewhere (another clone's), or is no link at all.
        """
        dot = path / ".git"
        if not dot.exists() and not dot.is_symlink():
            return "absent"
        if dot.is_symlink() or not dot.is_file():
            return "foreign"
        try:
            text = dot.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return "foreign"
        if not text.startswith("gitdir:"):
            return "foreign"
        target = path / text.removeprefix("gitdir:").strip()  # git may write it relative (worktree.useRelativePaths)
        if not target.exists():
            return "stale"
        if target.resolve().parent != (self.common_dir / "worktrees").resolve():
            return "foreign"
        return "ours" if _backlink(target) == dot.resolve() else "stale"

    def _forget_foreign_entries(self, path: Path) -> None:
        """Remove this repository's worktree entries for path's name that point into another checkout.

        A copied repository's `.git/worktrees/<loop>` still names the original's worktree: git would
        keep the branch it has checked out locked there, and `git worktree repair` would rewrite the
        original's link. Only the entry here is removed; the worktree it names is left as it is.
        """
        admin = self.common_dir / "worktrees"
        mine = (path / ".git").resolve()
        for entry in admin.iterdir() if admin.is_dir() else []:
            named = _backlink(entry)
            if named is None or named == mine or named.parent.name != path.name:
                continue
            if named.parent.parent.parts[-2:] != path.parent.parts[-2:]:
                continue  # not a bot's worktree (`.arl-bot/worktrees/<loop>`): the user's own, left alone
            points_back = named.is_file() and _gitdir_line(named) == entry.resolve()
            if not points_back:
                shutil.rmtree(entry)

    def stage_all(self) -> None:
        """Stage every change, untracked files included (ignored files stay out). Check hazards() first."""
        self._config = None  # read the config again: this is the first git command after an agent ran
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
        return self.store_commit(tree, [parent, *(merged or [])], message.strip() + "\n\n" + "\n".join(lines))

    def move_ref(self, ref: str, new: str, old: str | None) -> None:
        """Point ref at new only if it still points at old (None: only if it does not exist)."""
        self.run("update-ref", ref, new, old or ZERO_SHA)

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


def _locate(path: Path, search_parents: bool) -> tuple[Path, Path]:
    """(work tree root, common git dir) of the repository at path, as git itself finds them.

    One `git rev-parse` (reading config runs nothing; the forced config applies as everywhere) rather
    than GitPython's Repo, whose import alone runs `git version` and costs ~40 ms of every command's start.
    """
    not_repo = GitError("rev-parse", f"{path} is not inside a git repository",
                        hint="run arl-bot from a clone of your project (git init && git commit first)")
    if not path.is_dir():
        raise not_repo
    # GIT_DIR left over from a calling git would override path: the path given decides, as GitPython's Repo did.
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k) and k != "GIT_DIR"}
    env.update(SAFE_ENV)
    env.pop("GIT_CONFIG_PARAMETERS", None)
    env.update(config_env(list(SAFE_CONFIG), env))
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


def _gitdir_line(dot_git: Path) -> Path | None:
    """Where a worktree's `.git` file points (resolved), or None when it is no such file."""
    try:
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    return (dot_git.parent / text.removeprefix("gitdir:").strip()).resolve()


def _backlink(entry: Path) -> Path | None:
    """The `.git` file a worktree entry (`.git/worktrees/<name>`) names in its `gitdir` file, resolved."""
    try:
        text = (entry / "gitdir").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return (entry / text).resolve() if text else None


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


def _text(data: bytes, strip: bool) -> str:
    text = data.decode("utf-8", "surrogateescape")
    return text[:-1] if strip and text.endswith("\n") else text


def _pack_programs(args: list[str], listing: list[tuple[str, str, str]]) -> list[str]:
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


def _parse_listing(out: str) -> list[tuple[str, str, str]]:
    """(scope, key, value) from `git config --list --show-scope -z`; a key with no value reads as true."""
    fields = out.split("\0")
    entries = []
    for scope, item in zip(fields[0::2], fields[1::2], strict=False):
        key, _, value = item.partition("\n")
        entries.append((scope, key, value if "\n" in item else "true"))
    return entries


def _overrides(listing: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
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
