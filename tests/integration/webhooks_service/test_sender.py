"""Sending one delivery over real sockets on loopback: redirects are not followed, a silent
receiver or one that never accepts is cut off by the timeouts, an endless answer is read only
up to the cap, and the rules of production (https only, no private targets) hold."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from services.webhooks_service.adapters.sender import CurlSender
from services.webhooks_service.config import SenderSettings, Settings
from shared.config import ConfigError, Env

BODY = b'{"seq": 1}'
QUICK = SenderSettings(connect_timeout=0.5, read_timeout=1.0, max_response_bytes=4096,
                       allow_private=True)
Conversation = Callable[[socket.socket], None]


class RawServer:
    """A TCP server on loopback that answers each connection with `talk`, and counts them."""

    def __init__(self, talk: Conversation) -> None:
        self.talk = talk
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        """Where to send."""
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._converse, args=(connection,), daemon=True).start()

    def _converse(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            self.requests.append(connection.recv(65536))
            self.talk(connection)

    def close(self) -> None:
        """Stop listening."""
        self.closed.set()
        self.listener.close()


@contextlib.contextmanager
def server(talk: Conversation) -> Iterator[RawServer]:
    """A RawServer for the block."""
    found = RawServer(talk)
    try:
        yield found
    finally:
        found.close()


def answer(status: str, *headers: str) -> Conversation:
    """Answer every request with `status` and `headers`, no body."""
    head = "".join(f"{h}\r\n" for h in headers)
    reply = f"HTTP/1.1 {status}\r\n{head}Content-Length: 0\r\n\r\n".encode()
    return lambda connection: connection.sendall(reply)


def test_a_redirect_is_not_followed() -> None:
    with server(answer("200 OK")) as elsewhere, \
            server(answer("307 Temporary Redirect", f"Location: {elsewhere.url}")) as target:
        found = CurlSender(QUICK).send(target.url, {}, BODY)
        assert (found.status, found.delivered) == (307, False)
        assert len(target.requests) == 1
        assert elsewhere.requests == []


def test_a_receiver_that_never_answers_is_cut_off_by_the_timeout() -> None:
    silent = threading.Event()
    with server(lambda _connection: silent.wait(30)) as target:
        found = CurlSender(QUICK).send(target.url, {}, BODY)
        silent.set()
    assert found.status is None and "timed out" in (found.error or "")
    assert len(target.requests) == 1 and target.requests[0].startswith(b"POST /hook ")


def test_a_receiver_that_never_accepts_is_cut_off_by_the_connect_timeout() -> None:
    """A listener whose backlog is full: the kernel drops the SYN, so connect waits."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # more than the backlog holds; never accepted
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        found = CurlSender(QUICK).send(f"http://127.0.0.1:{port}/hook", {}, BODY)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert found.status is None and "Connection timed out" in (found.error or ""), found


def endless_answer(connection: socket.socket) -> None:
    """200 and a body that never ends (until the client hangs up)."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"1000\r\n" + b"x" * 4096 + b"\r\n"
    while True:
        connection.sendall(chunk)


def test_only_the_start_of_an_answer_is_read() -> None:
    """Without the cap this would run into the timeout and count as a failure."""
    with server(endless_answer) as target:
        found = CurlSender(QUICK).send(target.url, {}, BODY)
    assert (found.status, found.error, found.delivered) == (200, None, True)


def test_production_sends_only_to_https() -> None:
    with server(answer("200 OK")) as target:
        settings = SenderSettings(allow_private=True, https_only=True)
        found = CurlSender(settings).send(target.url, {}, BODY)
        assert found.status is None and found.error == "refused: Use https."
        assert target.requests == []


def test_a_private_target_is_refused_where_it_is_not_allowed() -> None:
    with server(answer("200 OK")) as target:
        found = CurlSender(SenderSettings()).send(target.url, {}, BODY)
        assert found.status is None
        assert found.error == "refused: Refused: 127.0.0.1 is loopback."
        assert target.requests == []


def test_production_refuses_to_allow_private_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKS_ALLOW_PRIVATE", "true")
    with pytest.raises(ConfigError, match="WEBHOOKS_ALLOW_PRIVATE cannot be switched on"):
        Settings.from_env(Env("production"))
