"""AMQP URLs: parsing the parts broker-sim needs, and masking the password for display."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

DEFAULT_URL = "amqp://guest:guest@localhost:5672/"
MASK = "****"


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where a broker is and who we are to it."""

    scheme: str
    host: str
    port: int
    user: str
    vhost: str

    @property
    def is_loopback(self) -> bool:
        """True for a broker on this machine."""
        return self.host in ("localhost", "127.0.0.1", "::1") or self.host.startswith("127.")


def parse_url(url: str) -> BrokerAddress:
    """Split an ``amqp://`` / ``amqps://`` URL; raises :class:`BrokerUrlError` when malformed."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [IPv6 bracket
        raise BrokerUrlError(f"broker URL {mask_url(url)!r} cannot be read: {exc}") from None
    if parts.scheme not in ("amqp", "amqps"):
        raise BrokerUrlError(
            f"broker URL must start with amqp:// or amqps://, got {mask_url(url)!r} "
            "(e.g. amqp://user:pass@localhost:5672/)"
        )
    if not parts.hostname:
        raise BrokerUrlError(f"broker URL {mask_url(url)!r} has no host (e.g. amqp://localhost/)")
    try:
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    except ValueError:
        raise BrokerUrlError(f"broker URL {mask_url(url)!r} has a bad port number") from None
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    vhost = unquote(path) if path else "/"
    return BrokerAddress(parts.scheme, parts.hostname, port, unquote(parts.username or "guest"), vhost)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``****``; safe to show and log."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{user}:{MASK}@{host}{port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        # A URL too broken to parse may still hold a password: hide everything after the scheme.
        scheme, sep, _ = url.partition("://")
        return f"{scheme}{sep}{MASK}" if sep else MASK


def build_url(user: str, password: str, host: str = "localhost", port: int = 5672, vhost: str = "/") -> str:
    """An AMQP URL with every part quoted (a vhost of ``/`` is the default, written as an empty path)."""
    path = "" if vhost == "/" else quote(vhost, safe="")
    return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{path}"


def with_vhost(url: str, vhost: str) -> str:
    """The same URL pointing at another vhost."""
    parts = urlsplit(url)
    path = "/" + ("" if vhost == "/" else quote(vhost, safe=""))
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def names_vhost(url: str) -> bool:
    """Whether the URL names a vhost itself (``…:5672/v``, ``…/%2F``), rather than leaving the default."""
    path = urlsplit(url).path
    return bool(path[1:] if path.startswith("/") else path)
