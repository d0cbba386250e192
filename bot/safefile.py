"""Reading and writing files an agent or an evaluation may have replaced: no links, plain files, bounded.

The bot reads files from places a sandboxed process could write (the working tree, the agent's workdir,
an evaluation's scratch and result dirs). Such a file may have become a symbolic link to something only
the bot can read (`/proc/self/environ`, a credential file), a FIFO that blocks a reader forever, or a link
to `/dev/zero`. Every such read goes through here: each path component is opened relative to the folder
the bot chose, with O_NOFOLLOW (a link anywhere on the way is refused, not followed), the file with
O_NONBLOCK (a FIFO cannot block the open), then fstat must say "regular file", and at most `limit` bytes
are read. A regular file read is bounded by its size, so the time is bounded too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from .errors import ArlError
from .sanitize import display_path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder", stat.S_IFLNK: "a symbolic link"}


class UntrustedFileError(ArlError):
    """A file in an agent-controlled place is not a plain file inside it, or is too big to read."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}",
                         hint="the bot reads only regular files, never through a symbolic link, up to a size cap")
        self.path = path
        self.reason = reason


class MissingFileError(UntrustedFileError):
    """The file is not there (callers that accept an absent file catch this one)."""


def read_untrusted(folder: Path, relative: str | PurePosixPath, limit: int,
                   *, over: Literal["refuse", "head", "tail"] = "refuse") -> bytes:
    """The bytes of folder/relative, a regular file reached without following any link.

    A file longer than limit is refused (`over="refuse"`), or cut to its first or last limit bytes.
    Raise MissingFileError when it is absent and UntrustedFileError for anything else that is wrong.
    """
    with open_untrusted(folder, relative) as handle:
        if over == "tail":
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - limit))
            return _read_at_most(handle, limit)
        data = _read_at_most(handle, limit + 1)
    if len(data) > limit:
        if over == "refuse":
            raise UntrustedFileError(_shown(relative), f"is larger than {limit:,} bytes; not read")
        data = data[:limit]
    return data


def text_untrusted(folder: Path, relative: str | PurePosixPath, limit: int,
                   *, over: Literal["refuse", "head", "tail"] = "refuse") -> str:
    """read_untrusted, decoded as UTF-8 (undecodable bytes replaced)."""
    return read_untrusted(folder, relative, limit, over=over).decode("utf-8", errors="replace")


@contextlib.contextmanager
def open_untrusted(folder: Path, relative: str | PurePosixPath) -> Iterator[BinaryIO]:
    """folder/relative opened for reading: a regular file, no link followed on the way (see the module)."""
    parts = _parts(relative)
    directory = _walk(folder, parts[:-1], relative)
    try:
        fd = _open(parts[-1], directory, _FILE_FLAGS, relative)
    finally:
        os.close(directory)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UntrustedFileError(_shown(relative), f"is {_KINDS.get(stat.S_IFMT(mode), 'not a regular file')}; "
                                     "only regular files are read")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb", buffering=0) as handle:
        yield handle


def readlink_untrusted(folder: Path, relative: str | PurePosixPath) -> str | None:
    """Where the symbolic link folder/relative points, or None when it is not a link; its folders are walked safely."""
    parts = _parts(relative)
    directory = _walk(folder, parts[:-1], relative)
    try:
        if not stat.S_ISLNK(os.stat(parts[-1], dir_fd=directory, follow_symlinks=False).st_mode):
            return None
        return os.readlink(parts[-1], dir_fd=directory)
    except FileNotFoundError:
        raise MissingFileError(_shown(relative), "not found") from None
    finally:
        os.close(directory)


def write_untrusted(folder: Path, relative: str | PurePosixPath, data: bytes) -> None:
    """Replace folder/relative with data: written beside it, then renamed over it.

    The rename replaces a link or FIFO put there instead of writing through it; the file keeps its
    permission bits when it was a regular file.
    """
    parts = _parts(relative)
    directory = _walk(folder, parts[:-1], relative)
    temporary = f".{parts[-1]}.arl-bot-{os.getpid()}"
    try:
        try:
            old = os.stat(parts[-1], dir_fd=directory, follow_symlinks=False)
            mode = stat.S_IMODE(old.st_mode) if stat.S_ISREG(old.st_mode) else 0o644
        except FileNotFoundError:
            mode = 0o644
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                     dir_fd=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(temporary, mode, dir_fd=directory, follow_symlinks=False)
            os.rename(temporary, parts[-1], src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=directory)
            raise
    except OSError as exc:
        raise UntrustedFileError(_shown(relative), f"could not be written: {exc.strerror}") from None
    finally:
        os.close(directory)


def _parts(relative: str | PurePosixPath) -> tuple[str, ...]:
    pure = PurePosixPath(relative)
    parts = tuple(p for p in pure.parts if p != ".")
    if pure.is_absolute() or not parts or ".." in parts:
        raise UntrustedFileError(_shown(relative), "is not a path inside its folder")
    return parts


def _walk(folder: Path, parts: tuple[str, ...], relative: str | PurePosixPath) -> int:
    """A descriptor of folder/parts, each step opened with O_NOFOLLOW. folder itself is the bot's choice."""
    try:
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MissingFileError(_shown(relative), f"its folder {folder} does not exist") from None
    for part in parts:
        try:
            child = _open(part, directory, _DIR_FLAGS, relative)
        finally:
            os.close(directory)
        directory = child
    return directory


def _open(name: str, directory: int, flags: int, relative: str | PurePosixPath) -> int:
    try:
        return os.open(name, flags, dir_fd=directory)
    except FileNotFoundError:
        raise MissingFileError(_shown(relative), "not found") from None
    except OSError as exc:
        which = "" if flags == _FILE_FLAGS else f"its folder {name!r} "
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            reason = (f"{which}is a symbolic link; links are not followed" if _is_link(name, directory)
                      else f"{which}is not a folder")
        elif exc.errno == errno.ENXIO:
            reason = "is a socket; only regular files are read"
        else:
            reason = f"cannot be opened: {exc.strerror}"
        raise UntrustedFileError(_shown(relative), reason) from None


def _is_link(name: str, directory: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _read_at_most(handle: BinaryIO, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = handle.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _shown(relative: str | PurePosixPath) -> str:
    """The path for a message: the agent may have named it, so odd characters are escaped as git does."""
    return display_path(str(relative))[:200]
