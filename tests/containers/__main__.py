"""`python -m tests.containers` (`make test-containers`): build every image, run
docker-compose.yml as production runs it, use it through the published gateway, stop each
process with SIGTERM, start again, check nothing was lost, remove it all; render the
Kubernetes overlays with kubectl and validate them. Prints one summary line; exit 1 on a
failure. TEST_CONTAINERS_KEEP=1 leaves the compose project up for a look.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import yaml

from tests.containers.docker import docker_daemon, run, say
from tests.containers.images import Images, build_everything
from tests.containers.lifecycle import stop_each
from tests.containers.smoke import Checks, after_restart, read_metrics, smoke
from tests.containers.stack import TAG, ComposeStack, make_first_key
from tests.manifests import K8S, OVERLAYS, comparable, invalid_objects, render


def check_manifests(checks: Checks) -> int:
    """Render each overlay with kubectl's kustomize and validate it; return the objects."""
    total = 0
    for overlay in OVERLAYS:
        rendered = run("kubectl", "kustomize", str(K8S / "overlays" / overlay)).stdout
        objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
        problems = invalid_objects(objects)
        checks.expect(f"kubectl kustomize {overlay}: {len(objects)} valid objects",
                      problems == [], problems)
        checks.expect(f"make test's offline rendering of {overlay} is kustomize's",
                      comparable(objects) == comparable(render(K8S / "overlays" / overlay)))
        total += len(objects)
    return total


def run_stack(stack: ComposeStack, checks: Checks) -> tuple[float, float]:
    """The compose part; returns the seconds to healthy, first and after the restart."""
    say(f"first signing key: {make_first_key(stack)}")
    say("docker-compose up (production settings, secrets from files)")
    first = stack.start()
    checks.expect(f"every container healthy ({first:.0f} s after up)", True)
    snapshot = smoke(stack, checks)
    read_metrics(stack, checks)
    say("SIGTERM to each process, one at a time")
    stop_each(stack, checks)
    say("docker-compose up again")
    second = stack.start()
    checks.expect(f"every container healthy again ({second:.0f} s after up)", True)
    after_restart(stack, checks, snapshot)
    return first, second


def summary(checks: Checks, images: Images | None, objects: int,
            healthy: tuple[float, float], seconds: float) -> str:
    """The one-line result of a run that passed."""
    sizes = "/".join(f"{size / 1e6:.0f}" for size in images.sizes.values()) if images else "?"
    return (f"test-containers: PASSED {len(checks.passed)} checks in {seconds:.0f} s "
            f"(base {images.base if images else '?'}; 4 images built in "
            f"{images.build_seconds if images else 0:.0f} s, {sizes} MB; healthy in "
            f"{healthy[0]:.0f} s, again in {healthy[1]:.0f} s after 10 graceful stops; "
            f"nothing lost; {objects} Kubernetes objects valid)")


def main() -> int:
    """Run everything; print the summary line."""
    started = time.monotonic()
    checks, images, stack = Checks(), None, None
    try:
        with docker_daemon() as compose, tempfile.TemporaryDirectory() as folder:
            objects = check_manifests(checks)
            stack = ComposeStack.production(compose, Path(folder), {})
            images = build_everything(compose, stack.environment, TAG)
            stack.variables.update(images.servers, BASE_IMAGE=images.base)
            try:
                healthy = run_stack(stack, checks)
            except Exception:
                say("container logs (ends):\n" + stack.tails())
                raise
            finally:
                if os.environ.get("TEST_CONTAINERS_KEEP") != "1":
                    stack.remove()
    except Exception as exc:
        traceback.print_exc()
        print(f"test-containers: FAILED after {time.monotonic() - started:.0f} s "
              f"({len(checks.passed)} checks passed): {str(exc).splitlines()[0][:300]}")
        return 1
    print(summary(checks, images, objects, healthy, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
