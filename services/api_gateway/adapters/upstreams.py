"""Pooled HTTP connections to the services, with timeouts and idempotent-only retries.

The gateway forwards with libcurl (pycurl): headers are parsed and bodies moved in C, and
each gateway thread keeps one handle per service whose keep-alive connections it reuses.
A pure-Python client spent more of the gateway's time on a forwarded request than
everything else the gateway does for it.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import pycurl

from shared.errors import ApiError

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Hop-by-hop headers (RFC 9110 7.6.1) and those the gateway's own server sets.
NOT_FORWARDED = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "host", "server", "date",
})
# Headers libcurl would add on its own; an empty value tells it to leave them out, so the
# service sees only what the client sent.
SUPPRESSED_DEFAULTS = ("Accept", "Content-Type", "Expect")
BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 2.0

# libcurl error codes (https://curl.se/libcurl/c/libcurl-errors.html).
COULDNT_RESOLVE_HOST = 6
COULDNT_CONNECT = 7
OPERATION_TIMEDOUT = 28


@dataclass(frozen=True)
class UpstreamReply:
    """What an upstream answered, to be passed back unchanged."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class _HeaderCollector:
    """Collect the headers of the final response (interim 1xx responses are dropped)."""

    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []

    def __call__(self, raw: bytes) -> None:
        line = raw.decode("latin-1")
        if line.startswith("HTTP/"):  # a new status line: forget any interim response's
            self.headers.clear()
            return
        name, sep, value = line.partition(":")
        if sep and name.lower() not in NOT_FORWARDED:
            self.headers.append((name.strip(), value.strip()))


class _Failure(Exception):
    """A request that got no usable response; `sent` says whether it reached the service."""

    def __init__(self, code: int, message: str, sent: bool) -> None:
        super().__init__(message)
        self.code = code
        self.sent = sent


class Upstream:
    """One service behind the gateway."""

    def __init__(self, name: str, base_url: str, *, connect_timeout: float,
                 read_timeout: float, retries: int) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = retries
        self._local = threading.local()

    def forward(self, method: str, path: str, *, query: bytes, headers: Mapping[str, str],
                body: bytes | IO[bytes] | None, read_timeout: float | None = None,
                keyed: bool = False) -> UpstreamReply:
        """Send one request and return the reply, or raise the gateway's 502/503/504.

        A request that never reached the service is retried whatever its method (unless its
        body is a stream, which cannot be sent twice); one that reached it only when the
        method is idempotent, or when it is `keyed`: it carries an `Idempotency-Key` the
        service honours, which answers a second sending with the first one's outcome.
        """
        url = self.base_url + path + (f"?{query.decode('latin-1')}" if query else "")
        timeout = read_timeout or self.read_timeout
        replayable = body is None or isinstance(body, bytes)
        attempt = 0
        while True:
            try:
                return self._perform(method, url, headers, body, timeout)
            except _Failure as failure:
                retry = replayable and (not failure.sent or keyed
                                        or method in IDEMPOTENT_METHODS)
                if not retry or attempt >= self.retries:
                    raise self._error(failure) from failure
            time.sleep(min(BACKOFF_SECONDS * 2 ** attempt, MAX_BACKOFF_SECONDS))
            attempt += 1

    def get_json(self, path: str, timeout: float = 2.0) -> tuple[int, Any]:
        """GET a JSON document (readiness, OpenAPI) with a short timeout, no retries."""
        try:
            reply = self._perform("GET", self.base_url + path, {}, None, timeout)
        except _Failure as failure:
            raise self._error(failure) from failure
        return reply.status, json.loads(reply.body)

    def _handle(self) -> pycurl.Curl:
        """This thread's handle: it owns the keep-alive connections it has opened."""
        handle = getattr(self._local, "handle", None)
        if handle is None:
            handle = self._local.handle = pycurl.Curl()
        else:
            handle.reset()  # options only: open connections are kept
        return handle

    def _perform(self, method: str, url: str, headers: Mapping[str, str],
                 body: bytes | IO[bytes] | None, timeout: float) -> UpstreamReply:
        handle = self._handle()
        received = io.BytesIO()
        collected = _HeaderCollector()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without signals: the gateway is threaded
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(self.connect_timeout * 1000))
        handle.setopt(pycurl.TIMEOUT_MS, int(timeout * 1000))
        handle.setopt(pycurl.HTTPHEADER, _header_lines(headers))
        handle.setopt(pycurl.WRITEFUNCTION, received.write)
        handle.setopt(pycurl.HEADERFUNCTION, collected)
        _set_method_and_body(handle, method, headers, body)
        try:
            handle.perform()
        except pycurl.error as exc:
            code, message = exc.args
            # Bytes of the request written to a connection, on a new or a reused one alike.
            sent = handle.getinfo(pycurl.REQUEST_SIZE) > 0
            raise _Failure(code, message, sent) from exc
        return UpstreamReply(status=handle.getinfo(pycurl.RESPONSE_CODE),
                             headers=collected.headers, body=received.getvalue())

    def _error(self, failure: _Failure) -> ApiError:
        if failure.code == OPERATION_TIMEDOUT and failure.sent:
            return ApiError(504, f"Upstream service '{self.name}' timed out")
        if failure.code in {COULDNT_CONNECT, COULDNT_RESOLVE_HOST, OPERATION_TIMEDOUT}:
            return ApiError(503, f"Upstream service '{self.name}' is unavailable")
        return ApiError(502, f"Bad response from upstream service '{self.name}'")


def _header_lines(headers: Mapping[str, str]) -> list[bytes]:
    # Latin-1 gives back the bytes the client sent (the WSGI server decoded them so); as str,
    # pycurl would take only ASCII and a value like `If-Match: Ó` would be a 500.
    lines = [f"{name}: {value}".encode("latin-1") for name, value in headers.items()
             if name.lower() != "content-length"]  # libcurl sends the body's own length
    present = {name.lower() for name in headers}
    lines.extend(f"{name}:".encode() for name in SUPPRESSED_DEFAULTS
                 if name.lower() not in present)
    return lines


def _set_method_and_body(handle: pycurl.Curl, method: str, headers: Mapping[str, str],
                         body: bytes | IO[bytes] | None) -> None:
    if body is None:
        if method == "HEAD":
            handle.setopt(pycurl.NOBODY, 1)
        elif method != "GET":
            handle.setopt(pycurl.CUSTOMREQUEST, method)
        return
    handle.setopt(pycurl.POST, 1)
    if isinstance(body, bytes):  # read from memory: COPYPOSTFIELDS refuses a NUL byte
        handle.setopt(pycurl.POSTFIELDSIZE_LARGE, len(body))
        handle.setopt(pycurl.READFUNCTION, io.BytesIO(body).read)
    else:  # streamed through, never held whole in the gateway
        length = next((value for name, value in headers.items()
                       if name.lower() == "content-length"), None)
        handle.setopt(pycurl.POSTFIELDSIZE_LARGE, int(length) if length is not None else -1)
        handle.setopt(pycurl.READFUNCTION, body.read)
    if method != "POST":
        handle.setopt(pycurl.CUSTOMREQUEST, method)
