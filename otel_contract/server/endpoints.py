"""``host:port`` endpoints: one grammar for every address the sidecar listens on or connects to.

``host:port``, or ``[IPv6]:port``. A listening port may be 0 (the system picks a free one); a
destination's must be 1-65535. Settings check their endpoints when they are built, so a typo is one
line at start instead of a random port (99999 wrapped around to 34463) or a traceback from the gRPC
core; ``check_bindable`` then tells a port in use or a host that does not resolve before gRPC does.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

SCHEMES = ("http://", "https://")


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str  # without the brackets of an IPv6 address
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(value: object, *, listen: bool) -> Endpoint:
    """``value`` as an endpoint; ``ValueError`` saying what is wrong with it (the value included)."""
    text = value.strip() if isinstance(value, str) else ""
    host, sep, port = text.rpartition(":")
    if not sep or not port or any(c.isspace() or c == "/" for c in text):
        raise ValueError(f"expected host:port, got {value!r}")
    if not port.isdigit():
        raise ValueError(f"the port must be a number, got {value!r}")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not host:
        where = " (0.0.0.0 listens on every interface)" if listen else ""
        raise ValueError(f"the host is missing{where}, got {value!r}")
    if ":" in host and not bracketed:
        raise ValueError(f"an IPv6 address goes in brackets, as [::1]:4317, got {value!r}")
    number = int(port)
    lowest = 0 if listen else 1
    if not lowest <= number <= 65535:
        allowed = "1-65535, or 0 for a free port" if listen else "1-65535"
        raise ValueError(f"port {number} is out of range ({allowed}), got {value!r}")
    return Endpoint(host, number)


def endpoint_or_off(value: str) -> str | None:
    """None for a listener switched off (``off``, ``none`` or empty, as flags and config keys say it)."""
    return None if value.strip().lower() in ("", "off", "none") else value


def split_scheme(value: str) -> tuple[str, str]:
    """``value`` (stripped) as its ``http://`` or ``https://`` scheme (lower-cased, "" if none) and the rest."""
    text = value.strip()
    scheme = next((s for s in SCHEMES if text.lower().startswith(s)), "")
    return scheme, text[len(scheme) :]


def endpoint_problem(field: str, value: object, *, listen: bool, scheme: bool = False) -> str | None:
    """``field: reason`` when ``value`` is not an endpoint; ``scheme`` allows an http(s):// prefix."""
    text = value.strip() if isinstance(value, str) else value
    if scheme and isinstance(text, str):
        prefix, rest = split_scheme(text)
        text = rest.rstrip("/") if prefix else text
    try:
        parse_endpoint(text, listen=listen)
    except ValueError as error:
        return f"{field}: {error}"
    return None


def check_bindable(endpoint: str, *, what: str, reuse_port: bool = False) -> None:
    """``OSError`` naming ``endpoint`` and ``what`` listens there when it cannot be bound now.

    gRPC binds every address a host resolves to and fails only if none binds; so does this check,
    which runs first so that the error is one line of ours rather than the core's log and traceback.
    """
    address = parse_endpoint(endpoint, listen=True)
    try:
        candidates = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        reason = f"host {address.host!r} does not resolve: {error.strerror}"
        raise OSError(f"cannot listen on {address} ({what}): {reason}") from None
    failure: OSError | None = None
    for family, kind, protocol, _, where in candidates:
        with socket.socket(family, kind, protocol) as probe:
            # The options gRPC sets on its listener: without them the probe would fail where gRPC succeeds.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind(where)
                return
            except OSError as error:
                failure = failure or error
    reason = failure.strerror if failure is not None and failure.strerror else "no usable address"
    raise OSError(f"cannot listen on {address} ({what}): {reason}")
