"""A read-only subset of RabbitMQ's management HTTP API, for the embedded broker.

``GET`` only, on loopback only, with the broker's own credentials (HTTP basic), answering JSON in the
shape RabbitMQ 3.10's management plugin uses for ``/api/overview``, ``/api/vhosts[/V]``,
``/api/queues[/V[/Q]]``, ``/api/exchanges[/V[/E]]``, ``/api/bindings[/V]``, ``/api/consumers[/V]`` and
``/api/definitions``; so tools written for RabbitMQ's API (inspecting, importing a topology, watching
depths) work on the embedded broker. Message rates (``message_stats``) are not kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from broker_sim.embedded.exchange import Exchange
from broker_sim.embedded.queue import Queue
from broker_sim.embedded.quorum import queue_type
from broker_sim.embedded.trace import NODE

if TYPE_CHECKING:
    from broker_sim.embedded.server import Server

LOOPBACK = "127.0.0.1"
RABBITMQ_VERSION = "3.10.8"  # the API shape followed; product_name says what really answers
PRODUCT = "broker-sim embedded"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ManagementAPI:
    """The HTTP listener; ``port`` is the real port once :meth:`start` returned."""

    def __init__(self, server: Server, port: int = 0) -> None:
        self.server = server
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on loopback (never anywhere else: the API takes the AMQP password)."""
        app = web.Application(middlewares=[self._authenticate])
        routes = [
            ("/api/overview", self.overview),
            ("/api/vhosts", self.vhosts),
            ("/api/vhosts/{vhost}", self.vhost),
            ("/api/queues", self.queues),
            ("/api/queues/{vhost}", self.queues),
            ("/api/queues/{vhost}/{name}", self.queue),
            ("/api/exchanges", self.exchanges),
            ("/api/exchanges/{vhost}", self.exchanges),
            ("/api/exchanges/{vhost}/{name}", self.exchange),
            ("/api/bindings", self.bindings),
            ("/api/bindings/{vhost}", self.bindings),
            ("/api/consumers", self.consumers),
            ("/api/consumers/{vhost}", self.consumers),
            ("/api/definitions", self.definitions),
        ]
        for path, handler in routes:
            app.router.add_get(path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        user, password = _basic_credentials(request.headers.get("Authorization", ""))
        expected = self.server.broker.users.get(user)
        if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
            return web.json_response(
                {"error": "not_authorised", "reason": "Login failed"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="RabbitMQ Management"'},
            )
        return await handler(request)

    # --- endpoints --------------------------------------------------------------------------------

    def _vhost_or_404(self, request: web.Request) -> None:
        vhost = request.match_info.get("vhost")
        if vhost is not None and vhost != self.server.broker.vhost:
            raise _not_found()

    async def overview(self, request: web.Request) -> web.StreamResponse:
        """``/api/overview``: versions, node, object and message totals."""
        broker = self.server.broker
        queues = [self._queue_json(q) for q in broker.queues.values()]
        connections = self.server.connections
        return web.json_response(
            {
                "management_version": RABBITMQ_VERSION,
                "rabbitmq_version": RABBITMQ_VERSION,
                "product_name": PRODUCT,
                "product_version": RABBITMQ_VERSION,
                "cluster_name": "broker-sim",
                "node": NODE,
                "object_totals": {
                    "connections": len(connections),
                    "channels": sum(len(c.channels) for c in connections),
                    "exchanges": len(broker.exchanges),
                    "queues": len(queues),
                    "consumers": sum(q["consumers"] for q in queues),
                },
                "queue_totals": {
                    key: sum(q[key] for q in queues)
                    for key in ("messages", "messages_ready", "messages_unacknowledged")
                },
                "listeners": [
                    {
                        "node": NODE,
                        "protocol": "amqp",
                        "ip_address": self.server.host,
                        "port": self.server.port,
                    },
                    {"node": NODE, "protocol": "http", "ip_address": LOOPBACK, "port": self.port},
                ],
                "message_stats": {},
            }
        )

    async def vhosts(self, request: web.Request) -> web.StreamResponse:
        """``/api/vhosts``: the one vhost."""
        return web.json_response([self._vhost_json()])

    async def vhost(self, request: web.Request) -> web.StreamResponse:
        """``/api/vhosts/V``: tracing is always on here (it costs nothing until something listens)."""
        self._vhost_or_404(request)
        return web.json_response(self._vhost_json())

    async def queues(self, request: web.Request) -> web.StreamResponse:
        """``/api/queues[/V]``."""
        self._vhost_or_404(request)
        return web.json_response([self._queue_json(q) for q in self.server.broker.queues.values()])

    async def queue(self, request: web.Request) -> web.StreamResponse:
        """``/api/queues/V/Q``."""
        self._vhost_or_404(request)
        queue = self.server.broker.queues.get(request.match_info["name"])
        if queue is None:
            raise _not_found()
        return web.json_response(self._queue_json(queue))

    async def exchanges(self, request: web.Request) -> web.StreamResponse:
        """``/api/exchanges[/V]`` (the default exchange is listed with an empty name, as RabbitMQ does)."""
        self._vhost_or_404(request)
        return web.json_response([self._exchange_json(e) for e in self.server.broker.exchanges.values()])

    async def exchange(self, request: web.Request) -> web.StreamResponse:
        """``/api/exchanges/V/E``."""
        self._vhost_or_404(request)
        exchange = self.server.broker.exchanges.get(request.match_info["name"])
        if exchange is None:
            raise _not_found()
        return web.json_response(self._exchange_json(exchange))

    async def bindings(self, request: web.Request) -> web.StreamResponse:
        """``/api/bindings[/V]``, with the default exchange's implicit binding of every queue."""
        self._vhost_or_404(request)
        return web.json_response(self._bindings(implicit=True))

    async def consumers(self, request: web.Request) -> web.StreamResponse:
        """``/api/consumers[/V]``."""
        self._vhost_or_404(request)
        vhost = self.server.broker.vhost
        found = []
        for connection in self.server.connections:
            for channel in list(connection.channels.values()):
                for consumer in channel.consumers.values():
                    queue = consumer.queue
                    found.append(
                        {
                            "consumer_tag": consumer.tag,
                            "queue": {"name": queue.name, "vhost": vhost},
                            "channel_details": {
                                "name": f"{connection.name} ({channel.number})",
                                "number": channel.number,
                                "connection_name": connection.name,
                                "user": connection.user,
                                "node": NODE,
                            },
                            "ack_required": not consumer.no_ack,
                            "prefetch_count": consumer.prefetch,
                            "exclusive": consumer.exclusive,
                            "active": not queue.single_active or queue.consumers[:1] == [consumer],
                            "activity_status": "up"
                            if not queue.single_active or queue.consumers[:1] == [consumer]
                            else "waiting",
                            "arguments": {"x-priority": consumer.priority} if consumer.priority else {},
                        }
                    )
        return web.json_response(found)

    async def definitions(self, request: web.Request) -> web.StreamResponse:
        """``/api/definitions``: what ``rabbitmqctl import_definitions`` takes (no users' passwords)."""
        broker = self.server.broker
        vhost = broker.vhost
        return web.json_response(
            {
                "rabbit_version": RABBITMQ_VERSION,
                "rabbitmq_version": RABBITMQ_VERSION,
                "product_name": PRODUCT,
                "product_version": RABBITMQ_VERSION,
                "users": [],
                "vhosts": [{"name": vhost}],
                "permissions": [],
                "topic_permissions": [],
                "parameters": [],
                "global_parameters": [],
                "policies": [],
                "queues": [
                    {
                        "name": q.name,
                        "vhost": vhost,
                        "durable": q.durable,
                        "auto_delete": q.auto_delete,
                        "arguments": plain(q.arguments),
                    }
                    for q in broker.queues.values()
                    if not q.exclusive
                ],
                "exchanges": [
                    {
                        "name": e.name,
                        "vhost": vhost,
                        "type": e.type,
                        "durable": e.durable,
                        "auto_delete": e.auto_delete,
                        "internal": e.internal,
                        "arguments": plain(e.arguments),
                    }
                    for e in broker.exchanges.values()
                    if e.name and not e.name.startswith("amq.")
                ],
                # RabbitMQ exports bindings without properties_key (it names a binding in URLs only).
                "bindings": [
                    {key: value for key, value in b.items() if key != "properties_key"}
                    for b in self._bindings(implicit=False)
                    if not (b["destination_type"] == "queue" and broker.queues[b["destination"]].exclusive)
                ],
            }
        )

    # --- shapes -----------------------------------------------------------------------------------

    def _vhost_json(self) -> dict[str, Any]:
        return {"name": self.server.broker.vhost, "tracing": True, "description": "", "tags": []}

    def _queue_json(self, queue: Queue) -> dict[str, Any]:
        ready = len(queue.messages)
        unacked = self._unacked(queue)
        kind = queue_type(queue.arguments)
        shape: dict[str, Any] = {
            "name": queue.name,
            "vhost": queue.vhost,
            "durable": queue.durable,
            "auto_delete": queue.auto_delete,
            "exclusive": queue.exclusive,
            "arguments": plain(queue.arguments),
            "type": kind,
            "state": "running",
            "node": NODE,
            "messages": ready + unacked,
            "messages_ready": ready,
            "messages_unacknowledged": unacked,
            "consumers": len(queue.consumers),
        }
        if kind == "quorum":
            shape.update({"leader": NODE, "members": [NODE], "online": [NODE]})
        return shape

    def _unacked(self, queue: Queue) -> int:
        return sum(
            1
            for connection in self.server.connections
            for channel in list(connection.channels.values())
            for _, owner, _ in channel.unacked.values()
            if owner is queue
        )

    def _exchange_json(self, exchange: Exchange) -> dict[str, Any]:
        return {
            "name": exchange.name,
            "vhost": self.server.broker.vhost,
            "type": exchange.type,
            "durable": exchange.durable,
            "auto_delete": exchange.auto_delete,
            "internal": exchange.internal,
            "arguments": plain(exchange.arguments),
        }

    def _bindings(self, *, implicit: bool) -> list[dict[str, Any]]:
        broker = self.server.broker
        vhost = broker.vhost
        found: list[dict[str, Any]] = []
        if implicit:
            found.extend(_binding_json(vhost, "", q, "queue", q, {}) for q in broker.queues)
        for exchange in broker.exchanges.values():
            for binding in exchange.bindings:
                found.append(
                    _binding_json(
                        vhost,
                        exchange.name,
                        binding.queue,
                        "queue",
                        binding.routing_key,
                        dict(binding.arguments),
                    )
                )
            for binding in exchange.forward.bindings if exchange.forward is not None else ():
                found.append(
                    _binding_json(
                        vhost,
                        exchange.name,
                        binding.queue,
                        "exchange",
                        binding.routing_key,
                        dict(binding.arguments),
                    )
                )
        return found


def _binding_json(
    vhost: str, source: str, destination: str, kind: str, routing_key: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    return {
        "source": source,
        "vhost": vhost,
        "destination": destination,
        "destination_type": kind,
        "routing_key": routing_key,
        "arguments": plain(arguments),
        "properties_key": routing_key if not arguments else f"{routing_key}~{_digest(arguments)}",
    }


def _digest(arguments: dict[str, Any]) -> str:
    raw = json.dumps(plain(arguments), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha1(raw).digest()[:8]).decode().rstrip("=")


def plain(value: Any) -> Any:
    """A decoded AMQP value as JSON can hold it (tables as objects, arrays as lists, bytes as text)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")
    return value


def _basic_credentials(header: str) -> tuple[str, str]:
    if not header.startswith("Basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(
        text='{"error":"Object Not Found","reason":"Not Found"}', content_type="application/json"
    )
