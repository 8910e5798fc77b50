"""The loop that connects, opens a session, waits for it to be lost, and connects again.

It owns the connecting task and its events (attached, wake, stop) and nothing of the scenario:
the engine keeps the scenario's long-lived state and the commands, and is reached through the
narrow :class:`Attaching` interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from aio_pika.abc import AbstractConnection

from broker_sim.broker.handle import BrokerHandle
from broker_sim.domain.events import ConnectionChanged, EngineProblem, FlowEvent, LinkState
from broker_sim.domain.urls import parse_url, with_vhost
from broker_sim.domain.words import in_words
from broker_sim.settings import Settings
from broker_sim.sim.consumer import ChannelError
from broker_sim.sim.link import GET_A_BROKER, connect_with_retry
from broker_sim.sim.session import Session

log = logging.getLogger(__name__)

ATTACH_TIMEOUT = 30.0
"""Seconds setting the scenario up on a fresh connection may take before it is tried again."""


class Attaching(Protocol):
    """What the reconnect loop needs of the engine it connects."""

    settings: Settings
    """Where to connect; the loop refreshes its host and port when the broker moved."""
    broker: BrokerHandle

    @property
    def name(self) -> str:
        """The scenario's name (connection and task names)."""

    @property
    def title(self) -> str:
        """The scenario's title (messages to the user)."""

    def emit(self, event: FlowEvent) -> None:
        """Report an event."""

    def new_session(self, conn: AbstractConnection) -> Session:
        """A session of the scenario on a fresh connection (not opened yet)."""

    def attached(self, *, reconnecting: bool) -> None:
        """The session is open: say so."""


class Reconnector:
    """Keeps an engine on a live connection: connects, opens a session, reconnects after a loss."""

    def __init__(self, owner: Attaching) -> None:
        self.owner = owner
        self.session: Session | None = None
        """The live connection's session; None before the first connection."""
        self.attached = asyncio.Event()
        """Set while the scenario runs on a live connection."""
        self.wake = asyncio.Event()
        """Set (by the broker handle after a restart) to try connecting again now."""
        self._stop_requested = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin connecting in the background (once)."""
        if self._runner is None:
            self.owner.broker.wakers.add(self.wake)
            self._runner = asyncio.create_task(self._run(), name=f"engine {self.owner.name}")
            self._runner.add_done_callback(self._runner_ended)

    async def stopping(self) -> None:
        """Connect no more; a loop still connecting ends now, a live session is left to the caller."""
        self._stop_requested.set()
        self.owner.broker.wakers.discard(self.wake)
        if not self.attached.is_set():
            await self._cancel()

    async def end(self) -> None:
        """End the loop (after the caller took the live session apart)."""
        self.attached.clear()
        await self._cancel()

    async def _cancel(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

    def _runner_ended(self, runner: asyncio.Task[None]) -> None:
        # The loop that connects and reconnects ends only when stopped: anything else must be seen,
        # not leave a screen that waits for ever for a connection that will never come back.
        failure = None if runner.cancelled() else runner.exception()
        if failure is not None:
            log.error("the engine of %s stopped", self.owner.name, exc_info=failure)
            self.attached.clear()
            self.owner.emit(
                EngineProblem(
                    f"{self.owner.title!r} stopped after an internal error ({type(failure).__name__}: "
                    f"{in_words(failure)}); the log in the data folder has the details"
                )
            )

    async def _run(self) -> None:
        owner = self.owner
        reconnecting = False
        while not self._stop_requested.is_set():
            if _host_port(owner.broker.url) != _host_port(owner.settings.url):
                # a container may come back on another port; the engine's vhost stays (move_to)
                vhost = parse_url(owner.settings.url).vhost
                owner.settings = owner.settings.with_(url=with_vhost(owner.broker.url, vhost))
            conn = await connect_with_retry(
                owner.settings.url,
                owner.settings.url_source,
                owner.emit,
                name=f"broker-sim {owner.name}",
                reconnecting=reconnecting,
                wake=self.wake,
                advice=self._advice(),
            )
            session = self.session = owner.new_session(conn)
            try:
                await asyncio.wait_for(session.open(), ATTACH_TIMEOUT)
            except Exception as exc:  # the loop that reconnects must outlive any failure
                if isinstance(exc, TimeoutError):
                    why = f"the broker did not answer within {ATTACH_TIMEOUT:.0f} s; trying again"
                else:
                    if not isinstance(exc, (*ChannelError, OSError)):
                        log.exception("setting up %s failed", owner.name)
                    # the whole advice, not 200 characters of the broker's reply: it ends with what to do
                    why = in_words(exc, 500)
                owner.emit(EngineProblem(f"setting up {owner.title!r} failed: {why}"))
                await session.close()
                await asyncio.sleep(2.0)
                continue
            owner.attached(reconnecting=reconnecting)
            self.attached.set()
            session.start_publishing()
            await session.lost.wait()
            self.attached.clear()
            if self._stop_requested.is_set():
                return
            # said first: taking the session apart can take a while on a busy machine
            owner.emit(ConnectionChanged(LinkState.LOST, owner.settings.masked_url, "the connection closed"))
            await session.close()
            reconnecting = True

    def _advice(self) -> str:
        """What to tell a user whose broker does not answer: it depends on who runs it."""
        broker = self.owner.broker
        if broker.started_by_us:
            return f"broker-sim's {broker.kind} is not answering (restarting?); it retries by itself"
        return GET_A_BROKER


def _host_port(url: str) -> tuple[str, int]:
    address = parse_url(url)
    return address.host, address.port
