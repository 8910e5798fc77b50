"""RPC replies: what a server answers, and how a client matches an answer to its request.

Plain functions, no I/O. The request's id is its ``correlation_id``; the answer's body names that
id again, so a client can tell an answer meant for another request (a mix-up the correlation id
exists to catch) from its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

SENT_AT = "sent-at-ms"
"""Header of an RPC request (copied into its answer): wall-clock milliseconds when it was published."""


def reply_id(request_id: str) -> str:
    """The answer's message id: ``RUN.client.7`` is answered by ``RUN.client-reply.7``, so both
    read as number 7 on screen (``client#7``, ``client-reply#7``)."""
    head, dot, number = request_id.rpartition(".")
    return f"{head}-reply.{number}" if dot else f"{request_id}-reply"


def request_of(reply_message_id: str) -> str:
    """The request an answer's message id answers (the reverse of :func:`reply_id`)."""
    head, dot, number = reply_message_id.rpartition("-reply.")
    return f"{head}.{number}" if dot else reply_message_id.removesuffix("-reply")


def reply_body(request_id: str, result: str) -> bytes:
    """The answer to one request."""
    return f"reply to {request_id}: {result or 'done'}".encode()


def match_reply(correlation_id: str, body: bytes, headers: Mapping[str, Any] | None) -> tuple[str, str]:
    """``(result, "")`` for an answer that matches its request, with its round trip; else ``("", why)``."""
    if not body.decode(errors="replace").startswith(f"reply to {correlation_id}:"):
        return "", f"reply does not match its request {correlation_id}"
    sent = (headers or {}).get(SENT_AT)
    if not isinstance(sent, int):
        return f"reply to {correlation_id}", ""
    round_trip = max(0, time.time_ns() // 1_000_000 - sent)
    return f"reply to {correlation_id} after {round_trip} ms", ""
