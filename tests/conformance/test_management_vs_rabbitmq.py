"""The embedded broker's management API next to real RabbitMQ 3.10's management plugin.

The same small topology (an exchange, a queue with arguments, a binding, a consumer holding unacked
messages) is declared on the embedded broker and on a private RabbitMQ node with the plugin (never the
shared node). Every field the embedded broker serves must exist on RabbitMQ with the same JSON type,
and the fields broker-sim's own code reads must have the same values.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest

from broker_sim.broker.local_node import LocalNode
from broker_sim.embedded.launch import EmbeddedBroker

ENDPOINTS = [
    "/api/overview",
    "/api/queues",
    "/api/exchanges",
    "/api/bindings",
    "/api/consumers",
    "/api/definitions",
    "/api/vhosts",
    "/api/queues/%2F/orders",
    "/api/exchanges/%2F/shop",
]
READ_BY_BROKER_SIM = frozenset(
    {
        "name",
        "vhost",
        "type",
        "durable",
        "auto_delete",
        "arguments",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
        "source",
        "destination",
        "destination_type",
        "routing_key",
        "prefetch_count",
        "ack_required",
        "consumer_tag",
    }
)
"""Compared by value wherever they appear (``queue.name`` of a consumer is ``name`` one level down)."""
STATS_DEADLINE = 60.0
"""RabbitMQ's management plugin publishes queue and consumer stats every 5 s: wait up to this long."""

Key = Callable[[dict[str, Any]], object]
KEYS: dict[str, Key] = {
    "queues": lambda item: (item["vhost"], item["name"]),
    "exchanges": lambda item: (item["vhost"], item["name"]),
    "bindings": lambda item: (
        item["source"],
        item["destination"],
        item["destination_type"],
        item["routing_key"],
    ),
    "consumers": lambda item: (item["queue"]["name"], item["consumer_tag"]),
    "users": lambda item: item["name"],
    "vhosts": lambda item: item["name"],
    "permissions": lambda item: (item["user"], item["vhost"]),
}
"""How items of a list are matched between the two brokers, by the name of the list."""


@pytest.fixture
async def embedded(tmp_path: Path, managed_node: LocalNode) -> AsyncIterator[EmbeddedBroker]:
    """An embedded broker serving the management API, with the same user as the RabbitMQ node (so
    ``/api/definitions`` lists the same users and permissions)."""
    broker = EmbeddedBroker(
        tmp_path / "embedded", user=managed_node.user, password=managed_node.password, management=True
    )
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def _topology(url: str) -> aio_pika.abc.AbstractConnection:
    """Declare the topology; the returned connection holds the consumer (close it at the end)."""
    conn = await aio_pika.connect(url)
    ch = await conn.channel()
    await ch.set_qos(prefetch_count=2)
    shop = await ch.declare_exchange("shop", aio_pika.ExchangeType.TOPIC, durable=True)
    orders = await ch.declare_queue(
        "orders", durable=True, arguments={"x-max-length": 10, "x-message-ttl": 60000}
    )
    await orders.bind(shop, routing_key="order.*")
    for body in (b"1", b"2", b"3"):
        await shop.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), "order.new"
        )
    await orders.consume(_hold, consumer_tag="orders-reader")
    return conn


async def _hold(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    """A consumer that leaves its messages unacked."""


async def _snapshot(port: int, user: str, password: str) -> dict[str, Any]:
    """Every endpoint's JSON, once the stats (the queue's and the overview's totals, which RabbitMQ
    aggregates apart) show the consumer holding 2 unacked and 1 ready."""
    auth = {"Authorization": aiohttp.encode_basic_auth(user, password)}
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}", headers=auth) as api:

        async def get(path: str) -> Any:
            async with api.get(path) as response:
                assert response.status == 200, f"{path}: {response.status} {await response.text()}"
                return await response.json()

        async def settled() -> None:
            while True:
                queue = await get("/api/queues/%2F/orders")
                counts = (
                    queue.get("messages_ready"),
                    queue.get("messages_unacknowledged"),
                    queue.get("consumers"),
                )
                totals = (await get("/api/overview")).get("queue_totals", {})
                overall = totals.get("messages_ready"), totals.get("messages_unacknowledged")
                if counts == (1, 2, 1) and overall == (1, 2) and await get("/api/consumers"):
                    return
                # RabbitMQ's stats come on a timer; nothing to wait on but the next emission.
                await asyncio.sleep(0.5)

        await asyncio.wait_for(settled(), STATS_DEADLINE)
        return {path: await get(path) for path in ENDPOINTS}


def _differences(where: str, ours: Any, theirs: Any, list_name: str = "") -> list[str]:
    """What of ``ours`` is missing on RabbitMQ, of another JSON type, or (for the fields broker-sim
    reads) of another value."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [f"{where}: an object here, {type(theirs).__name__} on RabbitMQ"]
        found = []
        for key, value in ours.items():
            if key not in theirs:
                found.append(f"{where}.{key}: missing on RabbitMQ")
                continue
            found += _differences(f"{where}.{key}", value, theirs[key], key)
            # channel_details / connection_details name a connection: its ports differ, nothing to compare.
            if key in READ_BY_BROKER_SIM and "_details" not in where and value != theirs[key]:
                found.append(f"{where}.{key}: {value!r} here, {theirs[key]!r} on RabbitMQ")
        return found
    if isinstance(ours, list):
        if not isinstance(theirs, list):
            return [f"{where}: a list here, {type(theirs).__name__} on RabbitMQ"]
        key = KEYS.get(list_name)
        if key is None or not all(isinstance(item, dict) for item in ours):
            # A list of scalars (or of unmatched things): compare the type of the items only.
            return [
                f"{where}[]: {type(item).__name__} here, {type(theirs[0]).__name__} on RabbitMQ"
                for item in ours[:1]
                if theirs and _json_type(item) != _json_type(theirs[0])
            ]
        by_key = {key(item): item for item in theirs}
        found = []
        for item in ours:
            if key(item) not in by_key:
                found.append(f"{where}[{key(item)}]: not listed on RabbitMQ")
            else:
                found += _differences(f"{where}[{key(item)}]", item, by_key[key(item)])
        return found
    if _json_type(ours) != _json_type(theirs):
        return [f"{where}: {_json_type(ours)} {ours!r} here, {_json_type(theirs)} {theirs!r} on RabbitMQ"]
    return []


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", type(None): "null", list: "array", dict: "object"}[type(value)]


async def test_every_field_served_is_rabbitmqs_with_its_type_and_the_read_ones_with_its_value(
    managed_node: LocalNode, embedded: EmbeddedBroker
) -> None:
    """Same topology on both; every endpoint broker-sim serves compared field by field."""
    held = [await _topology(embedded.url), await _topology(managed_node.url)]
    try:
        ours = await _snapshot(embedded.management_port or 0, embedded.user, embedded.password)
        theirs = await _snapshot(managed_node.management_port or 0, managed_node.user, managed_node.password)
    finally:
        for conn in held:
            await conn.close()
    # The topology is there to compare (an empty list here would compare nothing).
    assert ("/", "orders") in {KEYS["queues"](q) for q in ours["/api/queues"]}
    assert ("/", "shop") in {KEYS["exchanges"](e) for e in ours["/api/exchanges"]}
    assert ("shop", "orders", "queue", "order.*") in {KEYS["bindings"](b) for b in ours["/api/bindings"]}
    assert [KEYS["consumers"](c) for c in ours["/api/consumers"]] == [("orders", "orders-reader")]
    assert {q["name"] for q in ours["/api/definitions"]["queues"]} == {"orders"}
    differences = [
        line
        for path in ENDPOINTS
        for line in _differences(path, ours[path], theirs[path], path.rsplit("/", 1)[1])
    ]
    assert not differences, "\n".join(differences)
