"""A fast webhook receiver for the benchmarks, run as its own process so that it does not
share a GIL with what it measures: every POST gets a 204 at once (nothing verified), and
`GET /count` says how many POSTs it took. `python -m bench.webhook_receiver` prints its port.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FastReceiver(BaseHTTPRequestHandler):
    """Counts POSTs; answers GET /count."""

    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
    count = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with FastReceiver.lock:
            FastReceiver.count += 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        body = str(FastReceiver.count).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        """Quiet."""


def main() -> None:
    """Listen on a free loopback port, print it, serve until killed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FastReceiver)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
