"""Host services an evaluation needs (an emulator bridge, a device-farm proxy): start, wait, watch, stop."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import policy, process
from .config import Service
from .errors import ArlError
from .sandbox import Policy, Sandbox
from .sandbox.base import WrappedSandbox

POLL_S = 0.05  # between readiness checks
READY_COMMAND_TIMEOUT_S = 10.0  # one run of a readiness command
LOG_TAIL = 4_000  # characters of a service's log that go into a crash reason
# Heads every service log in a crash: a script the agent may edit is not in the copy, and says so here.
WHERE = "(the service ran in a copy of the base commit's protected and non-editable files)\n"


class ServiceError(ArlError):
    """A service did not come up, or died while the evaluation needed it."""

    def __init__(self, name: str, problem: str, log: str) -> None:
        super().__init__(f"service {name!r} {problem}",
                         hint="run its command by hand on the runner, or raise `services[].timeout`; it runs in "
                              "a copy of the base commit's protected and non-editable files, so a file it "
                              "needs must be committed there and match no `editable` glob")
        self.name = name
        self.log = log


@dataclass
class Running:
    """One started service."""

    spec: Service
    port: int | None
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]  # the service's own variables, `{port}` filled in

    def log(self) -> str:
        """The tail of what the service printed."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        return WHERE + text[-LOG_TAIL:]

    def dead(self) -> str | None:
        """Why the service is gone, or None while it runs."""
        code = self.proc.poll()
        return None if code is None else f"exited with status {code}"


def free_port() -> int:
    """A TCP port nothing listens on right now (for `port: 0`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def env_name(name: str) -> str:
    """The upper-case form used in environment variable names."""
    return "".join(ch if ch.isalnum() else "_" for ch in name).upper()


class Services:
    """Starts the loop's services around one measurement and tells the evaluation where they are."""

    def __init__(self, specs: list[Service]) -> None:
        self.specs = list(specs)
        self.running: list[Running] = []
        self.env: dict[str, str] = {}  # what every evaluation sees while the services run

    @contextmanager
    def up(self, cwd: Path, logs: Path) -> Iterator[dict[str, str]]:
        """Start every service in order and wait until each is ready; stop them all on exit.

        cwd is trusted: the measurer writes it from the base commit's objects (bot/trusted.py), never
        the agent's tree, so nothing the agent wrote sits beside a service's script or on its path.
        """
        if not self.specs:
            yield {}
            return
        logs.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            stack.callback(self._stop_all)
            for spec in self.specs:
                self._start(spec, cwd, logs)
            yield self.env

    def check(self) -> ServiceError | None:
        """The first service that died since it came up, as an error carrying its log."""
        for item in self.running:
            why = item.dead()
            if why is not None:
                return ServiceError(item.spec.name, f"died during the evaluation ({why})", item.log())
        return None

    def _start(self, spec: Service, cwd: Path, logs: Path) -> Running:
        port = free_port() if spec.port == 0 else spec.port
        # str.replace, not format(): shell commands are full of braces of their own
        fill = str(port) if port is not None else ""
        command = spec.command.replace("{port}", fill)
        extra = {k: v.replace("{port}", fill) for k, v in spec.env.items()}
        log_path = logs / f"{spec.name}.log"
        with log_path.open("wb") as log:
            # The service is config, not agent output: it runs on the host, outside the sandbox, in the
            # trusted copy, with the same secret-free environment an evaluation gets (plus its own
            # variables; no PYTHONPATH: the allowlist drops it, so no path leads into the agent's tree).
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=policy.base_env(logs, extra), start_new_session=True,
            )
        item = Running(spec, port, proc, log_path, extra)
        self.running.append(item)  # before the wait, so a service that never gets ready is stopped too
        self._wait_ready(item, cwd, logs)
        prefix = f"AUTORESEARCH_SERVICE_{env_name(spec.name)}"
        self.env[f"{prefix}_HOST"] = "127.0.0.1"
        if port is not None:
            self.env[f"{prefix}_PORT"] = str(port)
            self.env.setdefault("ARL_HOST_SERVICE_URL", f"http://127.0.0.1:{port}")  # autoresearch-lab's name
        self.env.update(extra)
        return item

    def _wait_ready(self, item: Running, cwd: Path, logs: Path) -> None:
        spec = item.spec
        deadline = time.monotonic() + spec.timeout
        ready_port = spec.ready.port if spec.ready.port is not None else item.port
        while True:
            why = item.dead()
            if why is not None:
                raise ServiceError(spec.name, f"{why} before it was ready", item.log())
            if self._ready(item, ready_port, cwd, logs):
                return
            if time.monotonic() >= deadline:
                what = (f"port {ready_port} never opened" if spec.ready.command is None
                        else f"`{spec.ready.command}` never succeeded")
                raise ServiceError(spec.name, f"was not ready after {spec.timeout:g}s: {what}", item.log())
            time.sleep(POLL_S)

    @staticmethod
    def _ready(item: Running, port: int | None, cwd: Path, logs: Path) -> bool:
        check = item.spec.ready.command
        if check is not None:
            command = check.replace("{port}", str(item.port) if item.port is not None else "")
            result = process.run(["/bin/sh", "-c", command], cwd=cwd, env=policy.base_env(logs, item.env),
                                 timeout=READY_COMMAND_TIMEOUT_S)
            return result.ok
        return port is not None and port_open(port)

    def _stop_all(self) -> None:
        for item in reversed(self.running):
            process.kill_group(item.proc.pid)
            item.proc.wait()
        self.running.clear()
        self.env = {}


class ServiceSandbox(WrappedSandbox):
    """Wraps the evaluation's sandbox so an evaluation sees the services' variables and can reach them.

    Built per measurement with the variables of the services that measurement started.
    """

    def __init__(self, inner: Sandbox, env: Mapping[str, str]) -> None:
        super().__init__(inner)
        self.env = dict(env)

    def adjust(self, policy: Policy) -> Policy:
        """An evaluation gets the services' environment and the host's network."""
        if policy.phase == "evaluation" and self.env:
            # Services listen on the host's loopback: an evaluation in a network namespace of its
            # own could not reach them, so with services up it shares the host's network.
            policy = dataclasses.replace(policy, env={**policy.env, **self.env}, network=True)
        return policy
