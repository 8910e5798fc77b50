"""The embedded broker's read-only management API: RabbitMQ's JSON shapes, loopback, credentials.

The machine's RabbitMQ runs without the management plugin, so these run on the embedded broker only;
``test_management_vs_rabbitmq.py`` compares the shapes with the real plugin on a private node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest

from broker_sim.embedded.launch import EmbeddedBroker
from tests.conformance.clients import connection


@pytest.fixture
def managed_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A private embedded broker serving the management API."""
    broker = EmbeddedBroker(tmp_path / "data", user="conf", password="conf-secret", management=True)
    broker.start_sync()
    try:
        yield broker
    finally:
        broker.stop_sync()


@pytest.fixture
async def api(managed_broker: EmbeddedBroker) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session with the broker's credentials."""
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{managed_broker.management_port}",
        headers={"Authorization": aiohttp.encode_basic_auth("conf", "conf-secret")},
    ) as session:
        yield session


async def _get(api: aiohttp.ClientSession, path: str) -> Any:
    async with api.get(path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_wrong_or_missing_credentials_are_401(managed_broker: EmbeddedBroker) -> None:
    """The API asks for the broker's own user and password."""
    base = f"http://127.0.0.1:{managed_broker.management_port}"
    async with aiohttp.ClientSession(base_url=base) as anonymous:
        async with anonymous.get("/api/overview") as response:
            assert response.status == 401
        wrong = {"Authorization": aiohttp.encode_basic_auth("conf", "wrong")}
        async with anonymous.get("/api/queues", headers=wrong) as response:
            assert response.status == 401


async def test_only_reads(api: aiohttp.ClientSession) -> None:
    """Nothing can be changed through it."""
    async with api.put("/api/queues/%2F/q", json={"durable": True}) as response:
        assert response.status == 405
    async with api.delete("/api/queues/%2F/q") as response:
        assert response.status == 405


async def test_topology_in_rabbitmq_shapes(
    managed_broker: EmbeddedBroker, api: aiohttp.ClientSession
) -> None:
    """Queues (with depths and consumers), exchanges, bindings (also exchange-to-exchange), consumers,
    definitions and the overview, as RabbitMQ's management plugin lists them."""
    async with connection(managed_broker.url) as conn:
        ch = await conn.channel()
        await ch.set_qos(prefetch_count=5)
        logs = await ch.declare_exchange("logs", aio_pika.ExchangeType.TOPIC, durable=True)
        audit = await ch.declare_exchange("audit", aio_pika.ExchangeType.FANOUT, durable=True)
        await audit.bind(logs, routing_key="#")
        errors = await ch.declare_queue("errors", durable=True, arguments={"x-max-length": 10})
        await errors.bind(logs, routing_key="*.error")
        work = await ch.declare_queue("work", durable=True, arguments={"x-queue-type": "quorum"})
        for body in (b"1", b"2", b"3"):
            await logs.publish(aio_pika.Message(body), routing_key="db.error")
        held = await errors.get()
        assert held is not None
        tag = await work.consume(_ignore)

        queues = {q["name"]: q for q in await _get(api, "/api/queues")}
        assert queues["errors"] == await _get(api, "/api/queues/%2F/errors")
        errors_json = queues["errors"]
        assert {k: errors_json[k] for k in ("vhost", "durable", "auto_delete", "exclusive", "type")} == {
            "vhost": "/",
            "durable": True,
            "auto_delete": False,
            "exclusive": False,
            "type": "classic",
        }
        assert errors_json["arguments"] == {"x-max-length": 10}
        assert (
            errors_json["messages"],
            errors_json["messages_ready"],
            errors_json["messages_unacknowledged"],
        ) == (
            3,
            2,
            1,
        )
        assert queues["work"]["type"] == "quorum" and queues["work"]["consumers"] == 1
        assert queues["work"]["leader"] == queues["work"]["node"]

        exchanges = {e["name"]: e for e in await _get(api, "/api/exchanges/%2F")}
        assert exchanges["logs"]["type"] == "topic" and exchanges["logs"]["durable"] is True
        assert "" in exchanges and "amq.topic" in exchanges

        bindings = await _get(api, "/api/bindings/%2F")
        shapes = {(b["source"], b["destination"], b["destination_type"], b["routing_key"]) for b in bindings}
        assert ("logs", "audit", "exchange", "#") in shapes
        assert ("logs", "errors", "queue", "*.error") in shapes
        assert ("", "errors", "queue", "errors") in shapes  # the default exchange's implicit binding

        (consumer,) = await _get(api, "/api/consumers")
        assert consumer["consumer_tag"] == tag and consumer["queue"] == {"name": "work", "vhost": "/"}
        assert consumer["ack_required"] is True and consumer["prefetch_count"] == 5

        overview = await _get(api, "/api/overview")
        assert overview["queue_totals"]["messages_ready"] == 2
        assert overview["object_totals"]["queues"] == 2 and overview["object_totals"]["consumers"] == 1

        definitions = await _get(api, "/api/definitions")
        assert {q["name"] for q in definitions["queues"]} == {"errors", "work"}
        assert {e["name"] for e in definitions["exchanges"]} == {"logs", "audit"}
        assert all(b["source"] for b in definitions["bindings"])  # no implicit default bindings
        assert (await _get(api, "/api/vhosts/%2F"))["tracing"] is True
        async with api.get("/api/queues/%2F/nothing") as response:
            assert response.status == 404


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    """A consumer that leaves its message unacked."""
