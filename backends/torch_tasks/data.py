"""Offline, deterministic task data: built once from files on this machine, cached outside the tree."""

from __future__ import annotations

import ast
import atexit
import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arl_bot.errors import ArlError

from . import DATA_ENV

FORMAT = 1  # bump when a builder or the layout changes: caches of older formats are then ignored
SPLITS = ("train", "val", "test")  # test is the holdout: only an evaluation with split=test reads it

# Pure-Python standard-library files whose docstrings make the charlm corpus. Files that a Python
# version lacks are skipped; the data hash in every result says which corpus was used.
CHARLM_FILES = (
    "argparse.py", "ast.py", "bisect.py", "calendar.py", "cmd.py", "codecs.py", "configparser.py",
    "contextlib.py", "copy.py", "csv.py", "dataclasses.py", "difflib.py", "doctest.py", "enum.py",
    "fileinput.py", "fnmatch.py", "fractions.py", "ftplib.py", "functools.py", "getopt.py", "gettext.py",
    "glob.py", "gzip.py", "heapq.py", "hmac.py", "imaplib.py", "inspect.py", "ipaddress.py",
    "json/__init__.py", "json/decoder.py", "locale.py", "logging/__init__.py", "mailbox.py", "netrc.py",
    "numbers.py", "operator.py", "optparse.py", "pickle.py", "pprint.py", "queue.py", "random.py",
    "sched.py", "secrets.py", "selectors.py", "shlex.py", "shutil.py", "smtplib.py", "socket.py",
    "statistics.py", "string.py", "subprocess.py", "tarfile.py", "tempfile.py", "textwrap.py",
    "threading.py", "tokenize.py", "traceback.py", "typing.py", "unittest/case.py", "urllib/parse.py",
    "uuid.py", "warnings.py", "weakref.py", "zipfile.py", "email/message.py", "http/client.py",
    "collections/__init__.py", "asyncio/tasks.py", "_pydecimal.py",
)


class TaskError(ArlError):
    """A built-in task cannot run: its data, its device or the model it was given is wrong."""


@dataclass(frozen=True)
class Prepared:
    """A task's data on disk: one folder, a meta.json and one or more files per split."""

    root: Path
    meta: dict[str, Any]

    @property
    def sha256(self) -> str:
        """The hash of the whole data set, the same on every machine that built the same data."""
        return str(self.meta["sha256"])

    @property
    def source(self) -> str:
        """What the data is, in words."""
        return str(self.meta["source"])

    def files(self, split: str) -> list[Path]:
        """The split's files, in the order the hash covers them."""
        return [self.root / name for name in self.meta["splits"][split]["files"]]


def cache_root() -> Path:
    """Where prepared data lives: $XDG_CACHE_HOME/arl-bot/tasks, by default ~/.cache/arl-bot/tasks."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "arl-bot" / "tasks"


def charlm_texts() -> tuple[list[str], str]:
    """The docstrings of CHARLM_FILES in file order, and a description of where they came from."""
    stdlib = Path(sysconfig.get_path("stdlib"))
    texts: list[str] = []
    used = 0
    for name in CHARLM_FILES:
        path = stdlib / name
        if not path.is_file():
            continue
        used += 1
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    texts.append(doc)
    if not texts:
        raise TaskError(f"no standard-library sources under {stdlib} to build the charlm corpus from",
                            hint="install the Python standard library's .py files (e.g. the libpython3-stdlib package)")
    version = ".".join(str(part) for part in sys.version_info[:3])
    return texts, f"docstrings of {used} Python {version} standard-library modules"


def _build_charlm() -> tuple[dict[str, list[bytes]], str]:
    texts, source = charlm_texts()
    parts: dict[str, list[str]] = {split: [] for split in SPLITS}
    for index, text in enumerate(texts):
        # Interleaved, not cut at the end: every split sees the same mix of modules and styles.
        parts[{18: "val", 19: "test"}.get(index % 20, "train")].append(text)
    return {split: ["\n\n".join(items).encode("utf-8")] for split, items in parts.items()}, source


def _build_digits() -> tuple[dict[str, list[bytes]], str]:
    from sklearn.datasets import load_digits  # ships inside scikit-learn: no download

    bunch = load_digits()
    images, labels = bunch.data.astype("uint8"), bunch.target.astype("uint8")  # pixels are 0..16
    out: dict[str, list[bytes]] = {}
    for split in SPLITS:
        # Every 7th image from the 6th on is val, from the 7th on test: about 5 : 1 : 1.
        index = [i for i in range(len(labels)) if {5: "val", 6: "test"}.get(i % 7, "train") == split]
        out[split] = [images[index].tobytes(), labels[index].tobytes()]
    return out, f"scikit-learn's bundled 8x8 handwritten digits ({len(labels)} images, pixels 0..16)"


BUILDERS: dict[str, tuple[Callable[[], tuple[dict[str, list[bytes]], str]], tuple[str, ...]]] = {
    "charlm": (_build_charlm, ("bytes",)),
    "digits": (_build_digits, ("x", "y")),
}


def _key(task: str) -> str:
    if task == "charlm":
        # The corpus depends on the standard library this interpreter ships.
        where = hashlib.sha256(sysconfig.get_path("stdlib").encode()).hexdigest()[:8]
        return f"charlm-f{FORMAT}-py{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}-{where}"
    try:
        version = importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        raise TaskError("the digits task needs scikit-learn, which ships its data",
                            hint='pip install "arl-bot[torch]" (or scikit-learn)') from None
    return f"digits-f{FORMAT}-sklearn{version}"


def _digest(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(len(chunk).to_bytes(8, "little"))
        h.update(chunk)
    return h.hexdigest()


def _write(task: str, folder: Path) -> None:
    build, kinds = BUILDERS[task]
    splits, source = build()
    meta: dict[str, Any] = {"task": task, "format": FORMAT, "source": source, "splits": {}}
    for split, chunks in splits.items():
        names = [f"{split}.{kind}.bin" for kind in kinds]
        for name, chunk in zip(names, chunks, strict=True):
            (folder / name).write_bytes(chunk)
        meta["splits"][split] = {"files": names, "sha256": _digest(chunks), "bytes": sum(map(len, chunks))}
    meta["sha256"] = _digest(meta["splits"][s]["sha256"].encode() for s in SPLITS)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load(folder: Path, splits: Iterable[str] = SPLITS) -> Prepared | None:
    """The prepared data in folder, checked against its hashes; None when missing or damaged."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        prepared = Prepared(folder, meta)
        for split in splits:
            if _digest(p.read_bytes() for p in prepared.files(split)) != meta["splits"][split]["sha256"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return prepared


def prepare(task: str, cache: Path | None = None) -> Prepared:
    """The task's data, built into the cache on first use; a cache that cannot be written is skipped."""
    if task not in BUILDERS:
        raise TaskError(f"no built-in task {task!r}", hint=f"choose one of {', '.join(BUILDERS)}")
    root = cache or cache_root()
    folder = root / _key(task)
    found = load(folder)
    if found is not None:
        return found
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{task}-", dir=root))
    except OSError:
        # A read-only home (a sandbox, a locked-down runner): build where we can, for this process only.
        staging = Path(tempfile.mkdtemp(prefix=f"arl-task-{task}-"))
        atexit.register(shutil.rmtree, staging, True)
        _write(task, staging)
        return Prepared(staging, json.loads((staging / "meta.json").read_text(encoding="utf-8")))
    try:
        _write(task, staging)
        if folder.exists() and load(folder) is None:
            shutil.rmtree(folder, ignore_errors=True)  # damaged or half-deleted: build it anew
        # Atomic publish: a concurrent evaluation sees the whole folder or none of it.
        with contextlib.suppress(OSError):  # another process published the same data first
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    found = load(folder)
    if found is None:
        raise TaskError(f"the {task} data in {folder} does not match its own hashes after building",
                            hint=f"delete {folder} and run again")
    return found


def stage(prepared: Prepared, target: Path, splits: Iterable[str]) -> Prepared:
    """Copy only the named splits into target (the evaluation's scratch), so the rest stays unseen."""
    target.mkdir(parents=True, exist_ok=True)
    names = list(splits)
    for split in names:
        for path in prepared.files(split):
            shutil.copyfile(path, target / path.name)
    meta = {**prepared.meta, "splits": {s: prepared.meta["splits"][s] for s in names}}
    (target / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return Prepared(target, meta)


def from_environment(task: str) -> Prepared:
    """The data the evaluator staged ($ARL_TASK_DATA), or the cache when a person runs train.py by hand."""
    staged = os.environ.get(DATA_ENV)
    if not staged:
        return prepare(task)
    folder = Path(staged)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise TaskError(f"${DATA_ENV}={staged} holds no task data (meta.json is missing or unreadable)",
                            hint=f"unset {DATA_ENV} to build the data from this machine") from None
    if meta.get("task") != task:
        raise TaskError(f"${DATA_ENV} holds data for task {meta.get('task')!r}, not {task!r}",
                            hint="the training script imports the wrong task module")
    checked = load(folder, meta.get("splits", {}))
    if checked is None:
        raise TaskError(f"the task data in {folder} does not match its hashes",
                            hint="something changed it after the evaluator staged it")
    return checked
