"""Docker for the container check: found, or installed from Debian's packages and started."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testbed.polling import wait_for

PACKAGES = ("docker.io", "docker-compose", "debootstrap")


def run(*args: str, timeout: float = 600, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; a failure shows the output's end."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env,
                            check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} … exited {result.returncode}:\n"
                           f"{(result.stdout + result.stderr)[-3000:]}")
    return result


STARTED = time.monotonic()


def say(message: str) -> None:
    """One line of progress, with the seconds since the start."""
    print(f"[test-containers {time.monotonic() - STARTED:4.0f}s] {message}", flush=True)


def daemon_answers() -> bool:
    """Whether `docker info` reaches a daemon."""
    return run("docker", "info", timeout=30, check=False).returncode == 0


def install_missing() -> None:
    """Install Docker, Compose and debootstrap from Debian's packages when one is missing."""
    missing = [tool for tool in ("docker", "debootstrap") if shutil.which(tool) is None]
    if not missing and compose_command():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(f"{', '.join(missing) or 'compose'} missing: install "
                           f"{' '.join(PACKAGES)} (or Docker's own packages)")
    say(f"installing {' '.join(PACKAGES)} (apt-get)")
    run("apt-get", "update", "-q")
    run("apt-get", "install", "-y", "-q", *PACKAGES,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def compose_command() -> list[str]:
    """`docker compose` (the plugin) when there is one, else `docker-compose`; [] if neither."""
    if run("docker", "compose", "version", check=False, timeout=30).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else []


@contextmanager
def docker_daemon() -> Iterator[list[str]]:
    """Yield the compose command with a daemon answering; a daemon started here is stopped
    again at the end."""
    install_missing()
    if daemon_answers():
        yield compose_command()
        return
    if os.geteuid() != 0:
        raise RuntimeError("the Docker daemon does not answer; start it (or join the docker group)")
    log = Path(tempfile.mkstemp(prefix="dockerd-", suffix=".log")[1])
    say(f"starting dockerd (its log: {log})")
    with log.open("w") as output:
        daemon = subprocess.Popen(["dockerd"], stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(daemon_answers, timeout=60, interval=0.5, what="dockerd to answer")
        yield compose_command()
    finally:
        say("stopping the dockerd started here")
        daemon.terminate()
        daemon.wait(timeout=60)
