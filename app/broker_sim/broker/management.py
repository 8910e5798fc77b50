"""Asking RabbitMQ's management API (HTTP, port 15672 by default) something, as the URL's user.

The API takes the password with every request: it goes only to a broker on this machine or over
HTTPS, never in clear text across a network. Blocking; callers run it in a thread.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

from broker_sim.domain.urls import mask_url, parse_url

MANAGEMENT_PORT = 15672
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class NotFound(OSError):
    """The API answered 404: the vhost, user or permission asked about does not exist."""


def default_api(url: str, port: int = MANAGEMENT_PORT) -> str:
    """Where RabbitMQ's management API would be for a broker URL: its host, port 15672."""
    host = parse_url(url).host
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def credentials_safe(api: str) -> bool:
    """Whether the password may go to this API: over HTTPS, or to this machine."""
    parts = urlsplit(api)
    host = parts.hostname or ""
    return parts.scheme == "https" or host in LOOPBACK_HOSTS or host.startswith("127.")


def api_request(
    url: str,
    path: str,
    method: str = "GET",
    body: dict[str, object] | None = None,
    *,
    port: int = MANAGEMENT_PORT,
    api: str | None = None,
) -> object:
    """``METHOD /api/PATH`` as the URL's user; the decoded JSON answer ({} when empty).

    ``api`` is the management API's base URL (``http://host:15672/``; a user and password in it
    take the place of the broker URL's), else the broker's host at ``port``. Raises
    :class:`NotFound` on 404, OSError for any other failure (in a few words), ValueError where
    the password would cross a network in clear text.
    """
    base = api or default_api(url, port)
    target = urlsplit(base)
    if not credentials_safe(base):
        raise ValueError(_unsafe(base))
    login = target if target.username else urlsplit(url)
    token = base64.b64encode(
        f"{unquote(login.username or 'guest')}:{unquote(login.password or 'guest')}".encode()
    ).decode()
    host = f"[{target.hostname}]" if ":" in (target.hostname or "") else target.hostname
    prefix = target.path.rstrip("/").removesuffix("/api")
    where = f"{target.scheme}://{host}{f':{target.port}' if target.port else ''}{prefix}/api/{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(where, data=data, method=method)
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            text = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise NotFound(f"HTTP 404 for {path}") from None
        raise OSError(f"HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise OSError(f"not reachable ({exc.reason})") from None
    except OSError as exc:  # a read that timed out, a connection reset mid-answer
        raise OSError(f"no answer ({exc})") from None
    result: object = json.loads(text) if text else {}
    return result


def find_api(url: str, given: str | None = None) -> tuple[str | None, str]:
    """The management API to read for a broker at ``url``: ``(base URL, "")``, or ``(None, why not)``.

    ``given`` (``--management-url`` / ``BROKER_SIM_MANAGEMENT_URL``) is used as it is, answering
    or not (the inspector then says why it has no figures); otherwise the broker's own host at
    port 15672, when something answers there as the URL's user.
    """
    if given:
        return (given, "") if credentials_safe(given) else (None, _unsafe(given))
    if not parse_url(url).is_loopback:
        return None, (
            f"not asked: the broker is on another machine and {default_api(url)} would be plain HTTP; "
            "give --management-url https://…"
        )
    api = default_api(url)
    try:
        api_request(url, "overview", api=api)
    except (OSError, ValueError) as exc:
        return None, f"none answers at {api} ({exc}); give --management-url if it is elsewhere"
    return api, ""


def _unsafe(api: str) -> str:
    return (
        f"not asked: {mask_url(api)} is plain HTTP to another machine, which would carry the password "
        "in clear text; give an https:// URL"
    )
