"""Sending a delivery with libcurl: timeouts, no redirects, a capped read, checked addresses.

libcurl resolves the target's name and, for every address it is about to connect to, asks
`_open_socket` for the socket: the address is checked there (`targets.address_refusal`) and
the connection is made to that very address, or not at all. The check is thus on the
resolved address at delivery time, and a name cannot resolve to one address for the check
and another for the connection. Proxies from the environment are not used.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import pycurl

from services.webhooks_service.config import SenderSettings
from services.webhooks_service.service_layer.attempts import Answer
from services.webhooks_service.service_layer.targets import (
    InvalidTarget,
    address_refusal,
    check_url,
)

log = logging.getLogger("taskstream.webhooks")

WRITE_ABORTED = 23  # CURLE_WRITE_ERROR: our callback stopped reading the answer


class _Request:
    """One request's capped answer and the addresses it refused."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.read = 0
        self.refused: list[str] = []

    def take(self, chunk: bytes) -> int | None:
        """Read (and drop) the answer up to the limit, then tell libcurl to stop."""
        self.read += len(chunk)
        return None if self.read <= self.limit else 0


class CurlSender:
    """POSTs deliveries; one libcurl handle per sending thread keeps its connections."""

    def __init__(self, settings: SenderSettings,
                 refusal: Callable[[str], str | None] = address_refusal) -> None:
        self.settings = settings
        self.refusal = (lambda _address: None) if settings.allow_private else refusal
        self._local = threading.local()

    def send(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        """POST `body` to `url`; the status, or why there was no answer."""
        try:
            check_url(url, https_only=self.settings.https_only,
                      allow_private=self.settings.allow_private)
        except InvalidTarget as exc:
            return Answer(None, f"refused: {exc}")
        handle, request = self._handle(), _Request(self.settings.max_response_bytes)
        self._prepare(handle, request, url, headers, body)
        try:
            handle.perform()
        except pycurl.error as exc:
            code, message = exc.args
            if code != WRITE_ABORTED:
                return Answer(None, _failure(request, message))
        return Answer(int(handle.getinfo(pycurl.RESPONSE_CODE)))

    def _handle(self) -> pycurl.Curl:
        """This thread's handle, its options reset (its open connections are kept)."""
        handle = getattr(self._local, "handle", None)
        if handle is None:
            handle = self._local.handle = pycurl.Curl()
        else:
            handle.reset()
        return handle

    def _prepare(self, handle: pycurl.Curl, request: _Request, url: str,
                 headers: dict[str, str], body: bytes) -> None:
        settings = self.settings
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.PROXY, "")
        handle.setopt(pycurl.NOPROXY, "*")
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(settings.connect_timeout * 1000))
        handle.setopt(pycurl.TIMEOUT_MS, int(settings.longest_request * 1000))
        handle.setopt(pycurl.OPENSOCKETFUNCTION, self._opener(request))
        handle.setopt(pycurl.WRITEFUNCTION, request.take)
        handle.setopt(pycurl.HTTPHEADER, [f"{k}: {v}".encode() for k, v in headers.items()]
                      + [b"Expect:", b"Accept:"])
        handle.setopt(pycurl.POSTFIELDSIZE, len(body))
        handle.setopt(pycurl.POSTFIELDS, body)

    def _opener(self, request: _Request) -> Callable[[int, Any], Any]:
        """libcurl's socket factory: a socket only for an address that may be reached."""

        def open_socket(_purpose: int, address: Any) -> Any:
            problem = self.refusal(address.addr[0])
            if problem:
                request.refused.append(problem)
                return pycurl.SOCKET_BAD
            return socket.socket(address.family, address.socktype, address.protocol)

        return open_socket


def _failure(request: _Request, message: str) -> str:
    """Why a request got no answer: the refused addresses, else libcurl's message."""
    if request.refused:
        return f"refused: {'; '.join(request.refused)}"
    return message
