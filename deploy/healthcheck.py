"""Container healthcheck: exit 0 when `http://127.0.0.1:<port><path>` answers 200.

    python3 deploy/healthcheck.py PORT_VARIABLE DEFAULT_PORT [PATH]

The port is read from the named variable, so the check follows the configured port. PATH
defaults to `/healthz`; the relay and the projector are checked on `/metrics`.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def healthy(port: str, path: str) -> bool:
    """Whether the local server answers 200 within two seconds."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def main(argv: list[str]) -> int:
    """Check the port named by argv[1] (default argv[2]) on argv[3] or `/healthz`."""
    variable, default = argv[1], argv[2]
    path = argv[3] if len(argv) > 3 else "/healthz"
    return 0 if healthy(os.environ.get(variable, "").strip() or default, path) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
