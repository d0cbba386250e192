"""Smart-HTTP git on loopback: `git http-backend` behind a tiny CGI server that wants a token, like GitHub."""

from __future__ import annotations

import base64
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FILE_LIMIT = 100 * 1024 * 1024  # GitHub refuses a push carrying any blob larger than this
# GitHub's pre-receive check, in its own words (docs: "About large files on GitHub").
SIZE_HOOK = textwrap.dedent("""\
    import os, subprocess, sys
    limit = int(os.environ["ARL_STANDIN_FILE_LIMIT"])
    big = []
    for line in sys.stdin:
        old, new, ref = line.split()
        if new.strip("0"):
            listed = subprocess.run(["git", "rev-list", "--objects", new, "--not", "--all"], capture_output=True,
                                    text=True, check=True).stdout.splitlines()
            paths = {entry.split(" ", 1)[0]: entry.partition(" ")[2] for entry in listed}
            sizes = subprocess.run(["git", "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
                                   input="\\n".join(paths) + "\\n", capture_output=True, text=True).stdout
            for row in sizes.splitlines():
                sha, kind, size = (row.split() + ["", ""])[:3]  # an empty list answers one "missing" line
                if kind == "blob" and int(size) > limit:
                    big.append((paths[sha], int(size)))
    if big:
        print("error: Trace: 6a1a6a1a6a1a6a1a6a1a6a1a6a1a6a1a", file=sys.stderr)
        print("error: See https://gh.io/lfs for more information.", file=sys.stderr)
        for path, size in big:
            print(f"error: File {path} is {size / 2**20:.2f} MB; this exceeds GitHub's file size limit of "
                  f"{limit / 2**20:.2f} MB", file=sys.stderr)
        print("error: GH001: Large files detected. You may want to try Git Large File Storage - "
              "https://git-lfs.github.com.", file=sys.stderr)
        sys.exit(1)
    """)


class GitHttpServer:
    """Serves the bare repositories under root at http://127.0.0.1:PORT/<name>.git; every request needs the token."""

    def __init__(self, root: Path, token: str | Callable[[str], bool], *, file_limit: int = FILE_LIMIT) -> None:
        """token: the one token accepted, or a check (the API stand-in's, so tokens expire there and here alike).

        file_limit: the largest blob a push may carry, GitHub's 100 MB unless a test lowers it.
        """
        self.root = root
        self.file_limit = file_limit
        self._hooks = tempfile.TemporaryDirectory(prefix="git-http-hooks-")
        hook = Path(self._hooks.name) / "pre-receive"
        hook.write_text(f"#!{sys.executable}\n" + SIZE_HOOK)
        hook.chmod(0o755)
        self.token = token if isinstance(token, str) else ""
        self.check = token if callable(token) else None
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        """The server's base URL (what GITHUB_SERVER_URL is set to)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> GitHttpServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._hooks.cleanup()

    def authorised(self, header: str) -> bool:
        """GitHub accepts a token as the password of HTTP basic auth (user x-access-token)."""
        scheme, _, encoded = header.strip().partition(" ")
        try:
            user, _, token = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if scheme.lower() != "basic" or user != "x-access-token" or not token:
            return False
        return self.check(token) if self.check is not None else token == self.token


def _handler(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            if not server.authorised(self.headers.get("Authorization", "")):
                server.requests.append((self.command, parts.path, 401))
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self._body()
            env = {"GIT_PROJECT_ROOT": str(server.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": parts.path,
                   "QUERY_STRING": parts.query, "REQUEST_METHOD": self.command, "REMOTE_USER": "x-access-token",
                   "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                   "CONTENT_LENGTH": str(len(body)), "PATH": "/usr/bin:/bin",
                   "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                   "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                   # GitHub's per-file limit, checked by a pre-receive hook outside the served repositories.
                   "ARL_STANDIN_FILE_LIMIT": str(server.file_limit), "GIT_CONFIG_COUNT": "1",
                   "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": server._hooks.name}
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode().split("\r\n"):
                key, _, value = line.partition(":")
                if key.lower() == "status":
                    status = int(value.split()[0])
                elif key:
                    headers.append((key, value.strip()))
            server.requests.append((self.command, parts.path, status))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
