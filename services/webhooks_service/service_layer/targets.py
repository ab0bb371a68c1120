"""Which webhook targets may be called: the URL's form, and the addresses it may reach.

A URL is checked when a subscription is saved (its form; a host written as an address). The
addresses are checked when a delivery connects, on each address the name resolved to, which
is the address the connection then uses (see `adapters.sender`): a name cannot resolve to a
public address for the check and to a private one for the connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2000
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Why an address is refused, in the order it is told (the first that applies).
REFUSED: tuple[tuple[str, Callable[[IpAddress], bool]], ...] = (
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local (cloud metadata lives there)", lambda ip: ip.is_link_local),
    ("private", lambda ip: ip.is_private),
    ("multicast", lambda ip: ip.is_multicast),
    ("reserved", lambda ip: ip.is_reserved),
    ("not public", lambda ip: not ip.is_global),
)


class InvalidTarget(ValueError):
    """A webhook URL that is refused (its message says why)."""


def address_refusal(address: str) -> str | None:
    """Why connecting to `address` is refused (None when it is a public address)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # no IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return next((f"{address} is {why}" for why, applies in REFUSED if applies(ip)), None)


def check_url(url: str, *, https_only: bool, allow_private: bool) -> str:
    """Return the URL if it may be a webhook target, else raise InvalidTarget."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidTarget(f"Use at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidTarget("Not a valid URL.") from None
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes:
        raise InvalidTarget(f"Use {' or '.join(schemes)}.")
    _check_host(parts, port, allow_private)
    return url


def _check_host(parts: SplitResult, port: int | None, allow_private: bool) -> None:
    """A host is required; no credentials or fragment; an address host must be public."""
    if not parts.hostname:
        raise InvalidTarget("The URL needs a host.")
    if parts.username is not None or parts.password is not None:
        raise InvalidTarget("Credentials in the URL are not allowed.")
    if parts.fragment:
        raise InvalidTarget("A fragment is not allowed.")
    if port == 0:
        raise InvalidTarget("Port 0 is not allowed.")
    try:
        ipaddress.ip_address(parts.hostname.split("%", 1)[0])
    except ValueError:
        return  # a name: checked on every address it resolves to, when delivering
    problem = None if allow_private else address_refusal(parts.hostname)
    if problem:
        raise InvalidTarget(f"Refused: {problem}.")
