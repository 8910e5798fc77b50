"""Which jobs a consumer group fails, and how many tries a job has had (from ``x-death``).

Plain functions, no I/O: the consumer asks them about each message it finishes.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from broker_sim.domain.scenario import RejectSpec


def job_bucket(message_id: str) -> float:
    """A stable number in [0, 1) for a message: the same job lands in the same bucket on every try.

    Ids are ``RUN.PRODUCER.N``: the run's random prefix is left out, so every run of a scenario
    fails the same jobs and its expectations can be exact.
    """
    _, _, within_run = message_id.partition(".")
    return zlib.crc32((within_run or message_id).encode()) / 2**32


def job_fails(spec: RejectSpec, message_id: str, first_try: bool) -> bool:
    """Whether this try of the job fails: poison jobs (``share``) always, flaky ones on their first try.

    A first try is a delivery neither dead-lettered before nor redelivered (a requeue adds no
    ``x-death``, but it sets the redelivered flag).
    """
    bucket = job_bucket(message_id)
    if bucket < spec.share:
        return True
    return bucket < spec.share + spec.flaky and first_try


def deaths(headers: Mapping[str, Any] | None, queue: str, reason: str) -> int:
    """How many times the message was dead-lettered from ``queue`` for ``reason``.

    RabbitMQ keeps one ``x-death`` entry per (queue, reason) with a rising ``count``; names may
    arrive as bytes or str depending on the client's decoding.
    """
    entries = (headers or {}).get("x-death") or []
    total = 0
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        if _text(entry.get("queue")) == queue and _text(entry.get("reason")) == reason:
            total += int(entry.get("count") or 0)
    return total


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
