"""What producers put in messages: small bodies that stand for real traffic.

Image jobs carry a reference to the picture, never its pixels, so the broker (and its trace)
moves a few dozen bytes per job.
"""

from __future__ import annotations

import json
import random

from broker_sim.domain.scenario import BodyKind

_LOG_TEXTS = {
    "info": ["user logged in", "cache warmed", "request served in 12 ms"],
    "warning": ["disk 85% full", "slow query 1.2 s", "retrying upstream"],
    "error": ["disk full", "payment gateway timeout", "worker crashed"],
    "critical": ["database unreachable", "out of memory"],
}


def make_body(kind: BodyKind, seq: int, routing_key: str, rng: random.Random) -> bytes:
    """The body of message number ``seq`` of a producer."""
    if kind == "image-job":
        w, h = rng.choice(((640, 480), (800, 600), (1024, 768), (1280, 720)))
        job = {"image": f"gen:{seq}:{w}x{h}", "job": seq, "request": f"POST /images/{seq}"}
        return json.dumps(job, separators=(",", ":")).encode()
    if kind == "log-line":
        severity = routing_key.rsplit(".", 1)[-1] if routing_key else "info"
        facility = routing_key.split(".", 1)[0] if "." in routing_key else "app"
        text = rng.choice(_LOG_TEXTS.get(severity, _LOG_TEXTS["info"]))
        return f"[{severity}] {facility}: {text}".encode()
    return f"message #{seq}".encode()


def preview(body: bytes, limit: int = 48) -> str:
    """A short printable preview of a body."""
    text = body[:limit].decode("utf-8", "replace")
    return text + ("…" if len(body) > limit else "")
