"""Forwarding retries: only what is safe to send twice is sent twice."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from services.api_gateway.adapters.upstreams import Upstream
from shared.errors import ApiError


@pytest.fixture
def hanging_up_server() -> Iterator[tuple[str, list[bytes]]]:
    """A server that reads each request and closes the connection without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                received.append(connection.recv(65536))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    listener.close()
    thread.join(5)


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
