"""The firehose (``amq.rabbitmq.trace``) in RabbitMQ's format: what broker-sim's observer reads."""

from __future__ import annotations

import aio_pika

from tests.conformance.clients import channel, consume
from tests.conformance.conftest import BrokerUnderTest


async def test_publish_and_deliver_traces(broker: BrokerUnderTest, name: str) -> None:
    """``publish.<exchange>`` lists the routed queues; ``deliver.<queue>`` says redelivered."""
    async with channel(broker.url) as ch:
        exchange = await ch.declare_exchange(name, aio_pika.ExchangeType.FANOUT, auto_delete=True)
        one = await ch.declare_queue(f"{name}.1", exclusive=True)
        two = await ch.declare_queue(f"{name}.2", exclusive=True)
        await one.bind(exchange)
        await two.bind(exchange)
        traces = await ch.declare_queue("", exclusive=True)
        await traces.bind("amq.rabbitmq.trace", routing_key=f"publish.{name}")
        await traces.bind("amq.rabbitmq.trace", routing_key=f"deliver.{name}.1")
        inbox = await consume(traces, no_ack=True)
        await exchange.publish(
            aio_pika.Message(b"traced", message_id="m-42", headers={"h": "v"}, delivery_mode=2),
            routing_key="rk",
        )
        got = await one.get()
        assert got is not None
        await got.ack()
        published, delivered = await inbox.wait_for(2)
    assert published.routing_key == f"publish.{name}" and published.body == b"traced"
    headers = dict(published.headers)
    assert headers["exchange_name"] == name
    assert headers["routing_keys"] == ["rk"]
    assert sorted(headers["routed_queues"]) == [f"{name}.1", f"{name}.2"]  # type: ignore[arg-type]
    props = headers["properties"]
    assert isinstance(props, dict)
    assert props["message_id"] == "m-42" and props["headers"] == {"h": "v"} and props["delivery_mode"] == 2
    assert headers["vhost"] == broker.vhost and headers["user"] == broker.user and headers["channel"] == 1
    assert delivered.routing_key == f"deliver.{name}.1"
    assert dict(delivered.headers)["redelivered"] == 0
    assert dict(delivered.headers)["exchange_name"] == name
