"""Asking RabbitMQ's management API (plain HTTP on port 15672) something, as the URL's user.

Used only for a broker on this machine: the API takes the AMQP password in the clear.
Blocking; callers run it in a thread.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

from broker_sim.domain.urls import parse_url

MANAGEMENT_PORT = 15672


class NotFound(OSError):
    """The API answered 404: the vhost, user or permission asked about does not exist."""


def api_request(
    url: str,
    path: str,
    method: str = "GET",
    body: dict[str, object] | None = None,
    *,
    port: int = MANAGEMENT_PORT,
) -> object:
    """``METHOD /api/PATH`` as the URL's user; the decoded JSON answer ({} when empty).

    Raises :class:`NotFound` on 404, OSError for any other failure (in a few words), ValueError
    for a broker that is not on this machine.
    """
    parts = urlsplit(url)
    address = parse_url(url)
    if not address.is_loopback:
        # The API is plain HTTP with the AMQP password: never send that across a network.
        raise ValueError("used only for a broker on this machine (its password would cross the network)")
    token = base64.b64encode(
        f"{unquote(parts.username or 'guest')}:{unquote(parts.password or 'guest')}".encode()
    ).decode()
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{parts.hostname}:{port}/api/{path}", data=data, method=method)
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
    result: object = json.loads(text) if text else {}
    return result
