"""The images of the container check: a base (the official one, or one made locally), the
wheelhouse, the five service images and, where the official PostgreSQL and Redis images
cannot be pulled, stand-ins built from the same base (deploy/local/)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.containers.docker import run, say
from tests.containers.wheelhouse import DEFAULT_BASE, fill_wheelhouse

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
LOCAL_BASE = "taskstream-local/python:3.11-bookworm"
SERVICE_IMAGES = ("gateway", "auth", "tasks", "logger", "webhooks-api")
# Compose variable: (official image, local stand-in, its Dockerfile in deploy/local/).
SERVERS = {"POSTGRES_IMAGE": ("postgres:16-bookworm", "taskstream-local/postgres:15",
                              "postgres.Dockerfile"),
           "REDIS_IMAGE": ("redis:7-bookworm", "taskstream-local/redis:7", "redis.Dockerfile")}


@dataclass
class Images:
    """What was built, from what, how long it took and how big it is."""

    base: str
    servers: dict[str, str]
    wheels: int = 0
    build_seconds: float = 0.0
    sizes: dict[str, int] = field(default_factory=dict)


def available(image: str) -> bool:
    """Whether the image is here or can be pulled."""
    if run("docker", "image", "inspect", image, check=False).returncode == 0:
        return True
    return run("docker", "pull", "--quiet", image, check=False, timeout=180).returncode == 0


def choose_base() -> str:
    """The official Python image when it can be pulled, else the local bookworm base."""
    if available(DEFAULT_BASE):
        return DEFAULT_BASE
    say(f"{DEFAULT_BASE} cannot be pulled: using a local base made by deploy/local/base.sh "
        f"(debootstrap of Debian bookworm, kept as {LOCAL_BASE})")
    result = run(str(LOCAL / "base.sh"), LOCAL_BASE)
    say(result.stdout.strip().splitlines()[-1])
    return LOCAL_BASE


def server_images(base: str) -> dict[str, str]:
    """PostgreSQL and Redis: the official images, or stand-ins built from `base`."""
    chosen = {}
    for variable, (official, stand_in, dockerfile) in SERVERS.items():
        if available(official):
            chosen[variable] = official
            continue
        say(f"{official} cannot be pulled: building the stand-in {stand_in} "
            f"(deploy/local/{dockerfile}, Debian's packages)")
        run("docker", "build", "--quiet", "--build-arg", f"BASE_IMAGE={base}",
            "-f", str(LOCAL / dockerfile), "-t", stand_in, str(LOCAL))
        chosen[variable] = stand_in
    return chosen


def image_size(image: str) -> int:
    """The image's size in bytes, as `docker image inspect` gives it."""
    return int(run("docker", "image", "inspect", "-f", "{{.Size}}", image).stdout)


def build_everything(compose: list[str], environment: dict[str, str], tag: str) -> Images:
    """Choose the bases, fill the wheelhouse and build the service images through compose."""
    base = choose_base()
    images = Images(base=base, servers=server_images(base))
    images.wheels = fill_wheelhouse(base)
    say(f"building {', '.join(SERVICE_IMAGES)} from {base} with {images.wheels} wheels")
    started = time.monotonic()
    run(*compose, "-f", str(ROOT / "docker-compose.yml"), "build", *SERVICE_IMAGES,
        env={**environment, "BASE_IMAGE": base})
    images.build_seconds = time.monotonic() - started
    images.sizes = {name: image_size(f"taskstream/{name}:{tag}") for name in SERVICE_IMAGES}
    return images
