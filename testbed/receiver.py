"""A webhook receiver on loopback for tests and benchmarks: it checks every delivery's
signature with the Standard Webhooks reference library (`standardwebhooks`), never with
Taskstream's own code, records what it got, answers what it is told, and can go down (its
port closed, its open connections cut) and come back on the same port."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    """One delivery as it arrived: its `webhook-id`, the event, and when."""

    webhook_id: str
    event: dict[str, Any]
    at: float  # time.time() on arrival
    signatures: int  # how many `v1,` signatures it carried

    @property
    def seq(self) -> int:
        """The event's position in the log."""
        return int(self.event["seq"])


@dataclass
class Receiver:
    """An HTTP server that takes deliveries signed by one of `secrets`."""

    secrets: list[str] = field(default_factory=list)
    answer: Callable[[Received], int] = lambda _received: 200
    port: int = 0
    received: list[Received] = field(default_factory=list)
    attempts: list[Received] = field(default_factory=list)  # every request, whatever answered
    unverified: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    connections: set[socket.socket] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """Where to subscribe it."""
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        """Listen (on the same port as before, after a stop)."""
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port and cut every open connection: the receiver is down."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self.connections.clear()

    def seqs(self) -> list[int]:
        """The seqs of the accepted deliveries, in arrival order."""
        with self.lock:
            return [r.seq for r in self.received]

    def take(self, body: bytes, headers: dict[str, str]) -> tuple[int, Received | None]:
        """Verify and record one request; the status to answer."""
        event = self._verified(body, headers)
        if event is None:
            return 401, None
        found = Received(headers.get("webhook-id", ""), event, time.time(),
                         len(headers.get("webhook-signature", "").split()))
        status = self.answer(found)
        with self.lock:
            self.attempts.append(found)
            if 200 <= status < 300:
                self.received.append(found)
        return status, found

    def _verified(self, body: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        """The event, if any secret's signature verifies (by the reference library)."""
        for secret in self.secrets:
            try:
                return dict(Webhook(secret).verify(body, headers))
            except WebhookVerificationError:
                continue
        with self.lock:
            self.unverified.append(headers.get("webhook-id", "?"))
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver.connections.add(self.connection)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, _found = receiver.take(body, {k.lower(): v for k, v in
                                                      self.headers.items()})
                reply = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                """Quiet."""

        return Handler
