"""Connecting to the broker, retrying, and saying in words what went wrong."""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Callable
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection

from broker_sim.domain.events import ConnectionChanged, FlowEvent, LinkState
from broker_sim.domain.urls import mask_url, parse_url

CONNECT_TIMEOUT = 5.0
RETRY_FIRST, RETRY_MAX = 0.5, 5.0


GET_A_BROKER = "start one with `docker compose up -d` or point at yours with --url"
"""What to do when nothing answers at a URL the user chose."""


def explain_failure(
    url: str, source: str, exc: BaseException, advice: str = GET_A_BROKER
) -> tuple[LinkState, str]:
    """What a failed connect means for a user: the state, and one line saying what to do."""
    address = parse_url(url)
    where = f"{address.host}:{address.port}"
    from_ = f" (URL from {source})" if source else ""
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError | aiormq.exceptions.AuthenticationError):
        return LinkState.AUTH_REFUSED, (
            f"the broker at {where} refused user {address.user!r}: check the user and password "
            f"in --url, BROKER_SIM_URL or .env{from_}"
        )
    if isinstance(exc, aiormq.exceptions.ConnectionNotAllowed):
        return LinkState.AUTH_REFUSED, (
            f"the broker at {where} does not let {address.user!r} into vhost {address.vhost!r} "
            f"(does the vhost exist, does the user have permissions?){from_}"
        )
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        reason = f"no answer within {CONNECT_TIMEOUT:.0f} s"
    elif _refused(exc):
        reason = "connection refused (nothing listens there)"
    return LinkState.UNREACHABLE, f"tried {mask_url(url)}{from_}: {reason[:120]}" + (
        f"; {advice}" if advice else ""
    )


def _refused(exc: BaseException) -> bool:
    # aiormq wraps ConnectionRefusedError as AMQPConnectionError(111, "Connect call failed …").
    if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
        return True
    return bool(exc.args) and exc.args[0] in (errno.ECONNREFUSED,)


async def connect_with_retry(
    url: str,
    source: str,
    emit: Callable[[FlowEvent], None],
    *,
    name: str,
    reconnecting: bool = False,
    wake: asyncio.Event | None = None,
    advice: str = GET_A_BROKER,
) -> AbstractConnection:
    """Connect, retrying with backoff for ever (until cancelled), reporting every attempt.

    Setting ``wake`` cuts the current wait short (a restart broker-sim did has just finished).
    """
    masked = mask_url(url)
    delay = RETRY_FIRST
    attempt = 0
    while True:
        attempt += 1
        state = LinkState.RECONNECTING if reconnecting else LinkState.CONNECTING
        emit(ConnectionChanged(state, masked, f"attempt {attempt}", attempt))
        try:
            return await aio_pika.connect(
                url, timeout=CONNECT_TIMEOUT, client_properties={"connection_name": name}
            )
        except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
            failed, detail = explain_failure(url, source, exc, advice)
            emit(ConnectionChanged(failed, masked, detail, attempt))
        if wake is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)
            if wake.is_set():
                wake.clear()
                delay = RETRY_FIRST / 2
        delay = min(delay * 2, RETRY_MAX)


def watch_blocked(connection: AbstractConnection, on_change: Callable[[str], None]) -> None:
    """Report ``connection.blocked`` (its reason) and ``connection.unblocked`` (``""``).

    A broker under a memory or disk alarm stops reading from publishing connections and says so
    with ``connection.blocked``; aiormq handles the frame (it holds back its writes) but only
    logs it. This is the one place broker-sim hooks it: the connection's own handlers are
    wrapped, so aiormq still does what it did.
    """
    amqp: Any = connection.transport.connection if connection.transport else None
    if amqp is None:
        return
    blocked = amqp._Connection__handle_connection_blocked
    unblocked = amqp._Connection__handle_connection_unblocked

    async def on_blocked(frame: Any) -> None:
        await blocked(frame)
        on_change(str(frame.reason or "") or "the broker gave no reason")

    async def on_unblocked(frame: Any) -> None:
        await unblocked(frame)
        on_change("")

    amqp._Connection__handle_connection_blocked = on_blocked
    amqp._Connection__handle_connection_unblocked = on_unblocked
