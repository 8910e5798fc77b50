"""The listening server: one :class:`Broker`, its connections, the firehose, and a clean shutdown."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from broker_sim.embedded.alarms import (
    DEFAULT_DISK_FREE_LIMIT,
    DEFAULT_MEMORY_LIMIT,
    ResourceMonitor,
    blocked_reason,
    parse_memory_limit,
    parse_size,
)
from broker_sim.embedded.broker import Broker
from broker_sim.embedded.connection import Connection
from broker_sim.embedded.faults import Faults
from broker_sim.embedded.management import ManagementAPI
from broker_sim.embedded.queue import Message
from broker_sim.embedded.trace import TRACE_EXCHANGE

log = logging.getLogger(__name__)


class Server:
    """An embedded broker listening on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        users: dict[str, str],
        *,
        host: str = "127.0.0.1",
        port: int = 5672,
        data_dir: Path | None = None,
        vhost: str = "/",
        disk_free_limit: int = parse_size(DEFAULT_DISK_FREE_LIMIT),
        memory_limit: int | None = None,
        faults: Faults | None = None,
        management_port: int | None = None,
        consumer_timeout_ms: int | None = None,
    ) -> None:
        if not users:
            raise ValueError("the embedded broker needs at least one user: it never runs open")
        self.broker = Broker(users, vhost, data_dir, faults)
        if consumer_timeout_ms is not None:
            self.broker.consumer_timeout_ms = consumer_timeout_ms
        self.host = host
        self.port = port
        self.connections: set[Connection] = set()
        self.recovered = 0
        self.blocked_reason: str | None = None
        """While a resource alarm is on: the reason publishing connections are blocked with."""
        self.monitor = ResourceMonitor(
            self.broker.store,
            disk_free_limit,
            memory_limit if memory_limit is not None else parse_memory_limit(DEFAULT_MEMORY_LIMIT),
            self._alarms_changed,
        )
        self._server: asyncio.Server | None = None
        # The read-only management API (loopback only), when a port is given (0 picks one).
        self.management = None if management_port is None else ManagementAPI(self, management_port)

    async def start(self) -> None:
        """Recover the store and start listening; ``port`` is then the real port."""
        self.recovered = self.broker.open()
        self.monitor.start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), self.host, self.port, backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.management is not None:
            await self.management.start()

    async def stop(self) -> None:
        """Stop listening, close every connection with 320 CONNECTION_FORCED, flush the store."""
        if self._server is not None:
            self._server.close()
        if self.management is not None:
            await self.management.stop()
        for connection in list(self.connections):
            connection.force_close("shutdown")
        await asyncio.sleep(0)  # let the Close frames reach the sockets
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        self.monitor.stop()
        await self.broker.close()

    def _alarms_changed(self, alarms: frozenset[str]) -> None:
        self.blocked_reason = blocked_reason(alarms) if alarms else None
        for connection in list(self.connections):
            connection.alarms_changed()

    def tracing(self) -> bool:
        """Whether anything is bound to the firehose exchange."""
        return bool(self.broker.exchanges[TRACE_EXCHANGE].bindings)

    def trace(self, message: Message) -> None:
        """Route a trace message through ``amq.rabbitmq.trace`` (traces are never persisted)."""
        broker = self.broker
        exchange = broker.exchanges[TRACE_EXCHANGE]
        now = asyncio.get_running_loop().time()
        for queue in broker.route(exchange, message):
            broker.enqueue(queue, message, now)
