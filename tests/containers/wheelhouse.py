"""`python -m tests.containers.wheelhouse [BASE_IMAGE]` (`make wheelhouse`): fill
deploy/wheelhouse/ with a wheel of every dependency, and of the build backend, for the Python
of BASE_IMAGE, so that the images build without the package index (deploy/Dockerfile).

pip evaluates environment markers for the interpreter it runs on, so a dependency that only
an older Python needs (`async-timeout; python_full_version < "3.11.3"`) is missed for a base
whose Python is older than this one: the base itself is asked what it still lacks.
"""

from __future__ import annotations

import re
import sys
import tempfile
import tomllib
from pathlib import Path

from tests.containers.docker import run, say

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / "deploy" / "wheelhouse"
DEFAULT_BASE = "python:3.11-slim"
MISSING = re.compile(r"No matching distribution found for ([^;\s]+)")
ROUNDS = 5


def requirements() -> list[str]:
    """The project's dependencies and its build backend, as pyproject.toml names them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [*project["project"]["dependencies"], *project["build-system"]["requires"]]


def download(requirements: list[str], *, with_deps: bool = True) -> None:
    """Download wheels (never source) of these requirements, pinned by constraints.txt."""
    run(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
        "--disable-pip-version-check", "-c", str(ROOT / "constraints.txt"),
        "-d", str(WHEELHOUSE), *([] if with_deps else ["--no-deps"]), *requirements)


def missing_in(base: str, listing: Path) -> list[str]:
    """What an offline install in `base` would still lack (nothing is installed)."""
    script = ("python3 -m venv /tmp/venv && PIP_DISABLE_PIP_VERSION_CHECK=1 /tmp/venv/bin/pip "
              "install --dry-run --quiet --no-index --find-links /wheelhouse "
              "-c /context/constraints.txt -r /context/requirements.txt")
    result = run("docker", "run", "--rm", "--network", "none",
                 "-v", f"{WHEELHOUSE}:/wheelhouse:ro", "-v", f"{listing}:/context:ro",
                 base, "sh", "-c", script, check=False)
    missing = MISSING.findall(result.stderr)
    if result.returncode != 0 and not missing:
        raise RuntimeError(f"an offline install in {base} fails:\n{result.stderr[-2000:]}")
    return missing


def fill_wheelhouse(base: str) -> int:
    """Make the wheelhouse complete for `base`; return how many wheels it holds."""
    WHEELHOUSE.mkdir(exist_ok=True)
    download(requirements())
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder)
        (listing / "requirements.txt").write_text("\n".join(requirements()) + "\n")
        (listing / "constraints.txt").write_text((ROOT / "constraints.txt").read_text())
        for _ in range(ROUNDS):
            missing = missing_in(base, listing)
            if not missing:
                return len(list(WHEELHOUSE.glob("*.whl")))
            say(f"wheels {base} needs besides this Python's: {', '.join(missing)}")
            download(missing, with_deps=False)
    raise RuntimeError(f"the wheelhouse is still incomplete for {base} after {ROUNDS} rounds")


if __name__ == "__main__":
    image = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BASE
    say(f"{fill_wheelhouse(image)} wheels in {WHEELHOUSE} for {image}")
