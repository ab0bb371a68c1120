"""Forwarding retries: only what is safe to send twice is sent twice."""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from services.api_gateway.adapters.upstreams import Upstream
from services.api_gateway.entrypoints.app import create_app
from shared.errors import ApiError
from testbed.tokens import TokenFactory
from tests.integration.api_gateway.test_gateway import gateway_settings


@contextmanager
def serving(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    """A local TCP server running `handle` on each connection in a thread; yield its URL."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        thread.join(5)


@pytest.fixture
def hanging_up_server() -> Iterator[tuple[str, list[bytes]]]:
    """A server that reads each request and closes the connection without answering."""
    with hanging_up(math.inf) as found:
        yield found


@contextmanager
def hanging_up(times: float) -> Iterator[tuple[str, list[bytes]]]:
    """A server that reads each request and closes its first `times` connections without
    answering; it answers 201 on every later one. Its URL and the requests it read."""
    received: list[bytes] = []

    def handle(connection: socket.socket) -> None:
        with connection:
            received.append(connection.recv(65536))
            if len(received) > times:
                connection.sendall(b"HTTP/1.1 201 CREATED\r\nContent-Type: application/json"
                                   b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

    with serving(handle) as url:
        yield url, received


def _upstream(url: str) -> Upstream:
    return Upstream("tasks", url, connect_timeout=1, read_timeout=2, retries=2)


def test_an_idempotent_request_that_got_no_answer_is_retried(
        hanging_up_server: tuple[str, list[bytes]]) -> None:
    url, received = hanging_up_server
    with pytest.raises(ApiError) as failure:
        _upstream(url).forward("GET", "/tasks", query=b"", headers={}, body=None)
    assert failure.value.status == 502
    assert len(received) == 3 and all(r.startswith(b"GET /tasks ") for r in received)


def test_a_post_that_reached_the_service_is_never_sent_twice(
        hanging_up_server: tuple[str, list[bytes]]) -> None:
    url, received = hanging_up_server
    with pytest.raises(ApiError) as failure:
        _upstream(url).forward("POST", "/task", query=b"", body=b'{"title": "once"}',
                               headers={"Content-Type": "application/json"})
    assert failure.value.status == 502
    assert len(received) == 1 and received[0].startswith(b"POST /task ")


def test_a_post_with_a_key_the_service_honours_is_sent_again(
        hanging_up_server: tuple[str, list[bytes]]) -> None:
    """The service answers a second sending of a keyed request with the first one's outcome,
    so a reply lost on a stale connection (the service restarted) is asked for again."""
    url, received = hanging_up_server
    with pytest.raises(ApiError) as failure:
        _upstream(url).forward("POST", "/task", query=b"", body=b'{"title": "once"}',
                               headers={"Content-Type": "application/json",
                                        "Idempotency-Key": "k-1"}, keyed=True)
    assert failure.value.status == 502
    assert len(received) == 3 and all(r.startswith(b"POST /task ") for r in received)
    assert all(b"Idempotency-Key: k-1" in r for r in received)


@pytest.fixture
def answers_gets_stalls_posts() -> Iterator[tuple[str, list[bytes]]]:
    """A keep-alive server that answers every GET and never answers a POST."""
    received: list[bytes] = []

    def handle(connection: socket.socket) -> None:
        with connection:
            while data := connection.recv(65536):
                received.append(data.split(b"\r\n", 1)[0])
                if data.startswith(b"GET "):
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                       b"Content-Length: 2\r\n\r\n{}")

    with serving(handle) as url:
        yield url, received


def test_a_post_timing_out_on_a_reused_connection_is_a_504_sent_once(
        answers_gets_stalls_posts: tuple[str, list[bytes]]) -> None:
    url, received = answers_gets_stalls_posts
    upstream = Upstream("tasks", url, connect_timeout=1, read_timeout=0.3, retries=2)
    first = upstream.forward("GET", "/tasks", query=b"", headers={}, body=None)
    assert first.status == 200  # the connection is now kept open and reused below
    with pytest.raises(ApiError) as failure:
        upstream.forward("POST", "/task", query=b"", body=b"{}",
                         headers={"Content-Type": "application/json"})
    assert (failure.value.status, failure.value.message) == (
        504, "Upstream service 'tasks' timed out")
    assert received == [b"GET /tasks HTTP/1.1", b"POST /task HTTP/1.1"]


@pytest.fixture
def hangs_up_once() -> Iterator[tuple[str, list[bytes]]]:
    """A server that closes its first connection without answering (a replica restarted
    under a kept-alive connection), and answers 201 on every later one."""
    with hanging_up(1) as found:
        yield found


@pytest.mark.parametrize(("key", "status", "sent"), [(True, 201, 2), (False, 502, 1)])
def test_the_gateway_sends_post_task_again_only_with_an_idempotency_key(
        monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str,
        hangs_up_once: tuple[str, list[bytes]], key: bool, status: int, sent: int) -> None:
    url, received = hangs_up_once
    tokens = TokenFactory()
    client = create_app(gateway_settings(monkeypatch, redis_url, namespace, url),
                        verifier=tokens.verifier()).test_client()
    response = client.post("/task", json={"title": "t"}, headers={
        **tokens.headers(), **({"Idempotency-Key": "k-1"} if key else {})})
    assert (response.status_code, len(received)) == (status, sent)
