"""The Docker sandbox: each phase in a fresh container, read-only root, removed however the run ends.

The only module that imports the `docker` SDK.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..config import SandboxSettings
from ..errors import ArlError
from ..process import STDOUT_BYTES, TAIL_BYTES, ProcessResult
from .base import NOTE_PREFIX, Policy, Sandbox

DEFAULT_IMAGE = "arl-bot-sandbox:local"  # built offline from this host's files by scripts/docker-image
LABEL = "arl-bot.sandbox"
STDIN_PATH = "/run/arl-stdin"
# The engine's log of one container: two files of 2 MB, so its last 2 to 4 MB hold the 1 MB of stdout kept for
# the metric (process.STDOUT_BYTES) and the tail of stderr.
LOG_FILES = {"max-size": "2m", "max-file": "2"}


class DockerOptions(SandboxSettings):
    """`sandbox:` keys of the docker kind."""

    image: str | None = None  # default arl-bot-sandbox:local (scripts/docker-image)
    gpus: str | None = None  # "all", or device ids like "0,1"; default none


class DockerSandbox(Sandbox):
    """Runs each command in a container that sees only the paths its policy names."""

    name = "docker"
    Options = DockerOptions
    settings: DockerOptions

    def run(
        self, argv: list[str], *, cwd: Path, policy: Policy, timeout: float, stdin: str | None = None
    ) -> ProcessResult:
        """Run argv in a new container; it is killed and removed on timeout, error, signal or bot death."""
        import docker
        from docker.errors import DockerException, ImageNotFound

        policy = self.resolve(policy)
        image = self.settings.image or DEFAULT_IMAGE
        try:
            client = docker.from_env()
            client.images.get(image)
        except ImageNotFound:
            raise ArlError(f"sandbox docker: image {image!r} not found",
                           hint="build the default with scripts/docker-image, or set `sandbox: {image: ...}`") from None
        except DockerException as exc:
            raise ArlError(f"sandbox docker: cannot reach the Docker engine: {exc}",
                           hint="start dockerd or set DOCKER_HOST, or choose another `sandbox:`") from None
        with tempfile.TemporaryDirectory(prefix="arl-docker-") as spare:
            volumes = _volumes(policy, cwd)
            if stdin is not None:
                stdin_file = Path(spare) / "stdin"
                stdin_file.write_text(stdin, encoding="utf-8")
                volumes[str(stdin_file)] = {"bind": STDIN_PATH, "mode": "ro"}
                argv = ["/bin/sh", "-c", f'exec "$@" < {STDIN_PATH}', "arl-stdin", *argv]
            container = client.containers.create(image, argv, **self._options(policy, cwd, volumes))
            reaper = _start_reaper(container.id)  # removes the container if this process dies
            try:
                return _wait(container, timeout)
            finally:
                _remove(container)
                if reaper.stdin is not None:
                    reaper.stdin.close()
                reaper.wait()

    def _options(self, policy: Policy, cwd: Path, volumes: dict[str, dict[str, str]]) -> dict[str, Any]:
        from docker.types import DeviceRequest, LogConfig, Ulimit

        limits = policy.limits
        options: dict[str, Any] = {
            "working_dir": str(cwd), "environment": policy.env, "volumes": volumes,
            "user": f"{os.getuid()}:{os.getgid()}", "read_only": True,
            "tmpfs": {"/tmp": "rw,nosuid,size=1g", "/dev/shm": "rw,nosuid,size=1g"},
            "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"], "init": True,
            "labels": {LABEL: str(os.getpid())},
            # The engine writes everything a container prints to its own log file, and logs() reads it
            # back whole: capped here, a flood can fill neither the engine's disk nor the bot's memory.
            "log_config": LogConfig(type=LogConfig.types.JSON, config=LOG_FILES),
        }
        if not policy.network:
            options["network_mode"] = "none"
        if limits.memory_mb is not None:
            options["mem_limit"] = options["memswap_limit"] = f"{limits.memory_mb}m"
        if limits.processes is not None:
            options["pids_limit"] = limits.processes
        if limits.cpu_seconds is not None:
            options["ulimits"] = [Ulimit(name="cpu", soft=limits.cpu_seconds, hard=limits.cpu_seconds)]
        gpus = self.settings.gpus
        if gpus:
            request = (DeviceRequest(count=-1, capabilities=[["gpu"]]) if gpus == "all" else
                       DeviceRequest(device_ids=[g.strip() for g in gpus.split(",")], capabilities=[["gpu"]]))
            options["device_requests"] = [request]
        return options


def _volumes(policy: Policy, cwd: Path) -> dict[str, dict[str, str]]:
    """Bind mounts at the same paths as on the host, so paths in the environment stay true."""
    volumes: dict[str, dict[str, str]] = {}
    for path in (*policy.readable, cwd):
        volumes[str(path)] = {"bind": str(path), "mode": "ro"}
    for path in policy.writable:
        volumes[str(path)] = {"bind": str(path), "mode": "rw"}
    for path in policy.readonly:  # the engine mounts parents first, so these cover the writable tree
        if path.exists():
            volumes[str(path)] = {"bind": str(path), "mode": "ro"}
    return volumes  # policy.hidden needs nothing: the host's files are not in the image


def _wait(container: Any, timeout: float) -> ProcessResult:
    import requests

    start = time.monotonic()
    container.start()
    timed_out = False
    code: int | None = None
    try:
        code = int(container.wait(timeout=timeout)["StatusCode"])
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
        timed_out = True
        container.kill()
    stdout = container.logs(stdout=True, stderr=False)[-STDOUT_BYTES:].decode("utf-8", errors="replace")
    stderr = container.logs(stdout=False, stderr=True)[-TAIL_BYTES:].decode("utf-8", errors="replace")
    container.reload()
    if container.attrs.get("State", {}).get("OOMKilled"):
        stderr += f"\n{NOTE_PREFIX}the memory limit was reached and the kernel killed it\n"
    return ProcessResult(returncode=None if timed_out else code, timed_out=timed_out, stdout=stdout,
                         stderr=stderr, duration_s=time.monotonic() - start)


def _remove(container: Any) -> None:
    from docker.errors import APIError, NotFound

    try:
        container.remove(force=True)
    except NotFound:
        pass
    except APIError as exc:
        if "already in progress" not in str(exc):
            raise


def _start_reaper(container_id: str) -> subprocess.Popen[bytes]:
    """A watcher in its own session that removes the container once our end of its pipe closes.

    The pipe closes when this process exits in any way, SIGKILL included, which no handler sees.
    """
    return subprocess.Popen([sys.executable, "-m", "arl_bot.sandbox.docker", container_id],
                            stdin=subprocess.PIPE, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _reap(container_id: str) -> None:
    """Wait for stdin to close, then remove the container if it is still there."""
    import docker
    from docker.errors import DockerException

    sys.stdin.buffer.read()
    with contextlib.suppress(DockerException):
        _remove(docker.from_env().containers.get(container_id))


if __name__ == "__main__":
    _reap(sys.argv[1])
