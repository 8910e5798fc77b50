"""Exchange-to-exchange bindings and alternate exchanges, as RabbitMQ 3.10 routes them."""

from __future__ import annotations

import aio_pika
import pika
import pytest

from broker_sim.embedded.launch import EmbeddedBroker
from tests.conformance.clients import channel, connection, consume, drain, pika_connection
from tests.conformance.conftest import BrokerUnderTest


async def test_chain_routes_through_every_exchange(broker: BrokerUnderTest, name: str) -> None:
    """topic e1 → direct e2 → q: each hop matches with its own type; unbinding cuts the chain."""
    async with channel(broker.url) as ch:
        e1 = await ch.declare_exchange(f"{name}.e1", aio_pika.ExchangeType.TOPIC)
        e2 = await ch.declare_exchange(f"{name}.e2", aio_pika.ExchangeType.DIRECT, auto_delete=True)
        queue = await ch.declare_queue(name, exclusive=True)
        await queue.bind(e2, routing_key="a.b")
        await e2.bind(e1, routing_key="a.*")
        for key in ("a.b", "a.c", "x.b"):
            await e1.publish(aio_pika.Message(key.encode()), routing_key=key)
        assert await drain(queue) == [b"a.b"]
        await e2.unbind(e1, routing_key="a.*")
        await e1.publish(aio_pika.Message(b"after"), routing_key="a.b")
        assert await drain(queue) == []
        await e1.delete()


async def test_auto_delete_source_goes_with_its_last_exchange_binding(
    broker: BrokerUnderTest, name: str
) -> None:
    """An auto-delete exchange whose only binding (to another exchange) is removed is deleted."""
    async with channel(broker.url) as ch:
        source = await ch.declare_exchange(f"{name}.src", aio_pika.ExchangeType.FANOUT, auto_delete=True)
        destination = await ch.declare_exchange(f"{name}.dst", aio_pika.ExchangeType.FANOUT)
        await destination.bind(source)
        await destination.unbind(source)
        await destination.delete()
    async with channel(broker.url) as ch:
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            await ch.declare_exchange(f"{name}.src", passive=True)


async def test_a_cycle_delivers_once(broker: BrokerUnderTest, name: str) -> None:
    """e1 ⇄ e2 (fanout both ways), both bound to q: the message reaches q once and routing ends."""
    async with channel(broker.url) as ch:
        e1 = await ch.declare_exchange(f"{name}.e1", aio_pika.ExchangeType.FANOUT, auto_delete=True)
        e2 = await ch.declare_exchange(f"{name}.e2", aio_pika.ExchangeType.FANOUT, auto_delete=True)
        await e2.bind(e1)
        await e1.bind(e2)
        queue = await ch.declare_queue(name, exclusive=True)
        await queue.bind(e2)
        other = await ch.declare_queue(f"{name}.other", exclusive=True)
        await other.bind(e1)
        await e1.publish(aio_pika.Message(b"round"), routing_key="")
        assert await drain(queue) == [b"round"]
        assert await drain(other) == [b"round"]


async def test_firehose_names_the_published_exchange_and_final_queues(
    broker: BrokerUnderTest, name: str
) -> None:
    """Through e1 → e2 → q, ``publish.e1`` lists q and never e2; there is no ``publish.e2``."""
    async with channel(broker.url) as ch:
        e1 = await ch.declare_exchange(f"{name}.e1", aio_pika.ExchangeType.FANOUT, auto_delete=True)
        e2 = await ch.declare_exchange(f"{name}.e2", aio_pika.ExchangeType.FANOUT, auto_delete=True)
        await e2.bind(e1)
        queue = await ch.declare_queue(name, exclusive=True)
        await queue.bind(e2)
        traces = await ch.declare_queue("", exclusive=True)
        await traces.bind("amq.rabbitmq.trace", routing_key=f"publish.{name}.#")
        inbox = await consume(traces, no_ack=True)
        await e1.publish(aio_pika.Message(b"traced"), routing_key="k")
        await e1.publish(aio_pika.Message(b"marker"), routing_key="end")
        first, second = await inbox.wait_for(2)
    assert first.routing_key == f"publish.{name}.e1" and second.routing_key == f"publish.{name}.e1"
    assert dict(first.headers)["routed_queues"] == [name]
    assert dict(first.headers)["exchange_name"] == f"{name}.e1"


def test_pika_bind_errors_and_unbind_of_nothing(broker: BrokerUnderTest, name: str) -> None:
    """404 for a missing end, 403 for the default exchange; unbinding what is not there is fine."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.exchange_unbind(f"{name}.nothing", f"{name}.neither", "k")
        ch.exchange_declare(f"{name}.src", "direct", auto_delete=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.exchange_bind(f"{name}.missing", f"{name}.src", "k")
        assert caught.value.reply_code == 404
        assert f"no exchange '{name}.missing'" in caught.value.reply_text
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.exchange_bind("", f"{name}.src", "k")
        assert caught.value.reply_code == 403


async def test_deleting_a_destination_removes_its_bindings(broker: BrokerUnderTest, name: str) -> None:
    """A deleted destination takes its binding with it: the source is unused again."""
    async with channel(broker.url) as ch:
        e1 = await ch.declare_exchange(f"{name}.e1", aio_pika.ExchangeType.FANOUT)
        e2 = await ch.declare_exchange(f"{name}.e2", aio_pika.ExchangeType.FANOUT)
        await e2.bind(e1)
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
            await e1.delete(if_unused=True)
    async with channel(broker.url) as ch:
        await ch.exchange_delete(f"{name}.e2")
        await ch.exchange_delete(f"{name}.e1", if_unused=True)
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            await ch.declare_exchange(f"{name}.e1", passive=True)


async def test_alternate_exchange_takes_the_unroutable(broker: BrokerUnderTest, name: str) -> None:
    """What the exchange routes nowhere goes to its alternate exchange; routed messages do not."""
    async with channel(broker.url) as ch:
        ae = await ch.declare_exchange(f"{name}.ae", aio_pika.ExchangeType.FANOUT, auto_delete=True)
        main = await ch.declare_exchange(
            f"{name}.main",
            aio_pika.ExchangeType.DIRECT,
            auto_delete=True,
            arguments={"alternate-exchange": f"{name}.ae"},
        )
        routed = await ch.declare_queue(f"{name}.routed", exclusive=True)
        await routed.bind(main, routing_key="known")
        unrouted = await ch.declare_queue(f"{name}.unrouted", exclusive=True)
        await unrouted.bind(ae)
        await main.publish(aio_pika.Message(b"k"), routing_key="known", mandatory=True)
        await main.publish(aio_pika.Message(b"u"), routing_key="unknown", mandatory=True)
        assert await drain(routed) == [b"k"]
        message = await unrouted.get(no_ack=True)
        assert message.body == b"u" and message.exchange == f"{name}.main"
        assert message.routing_key == "unknown"
        assert await drain(unrouted) == []


def test_pika_mandatory_is_returned_when_the_alternate_routes_nowhere(
    broker: BrokerUnderTest, name: str
) -> None:
    """An alternate exchange with no queue, or one that does not exist, still returns a mandatory publish."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.exchange_declare(f"{name}.empty-ae", "fanout", auto_delete=False)
        for ae in (f"{name}.empty-ae", f"{name}.missing-ae"):
            ch.exchange_declare(f"{name}.{ae}", "direct", arguments={"alternate-exchange": ae})
            with pytest.raises(pika.exceptions.UnroutableError):
                ch.basic_publish(f"{name}.{ae}", "k", b"lost", mandatory=True)
            ch.exchange_delete(f"{name}.{ae}")
        ch.exchange_delete(f"{name}.empty-ae")


async def test_in_a_chain_the_alternate_of_the_exchange_that_matched_nothing(
    broker: BrokerUnderTest, name: str
) -> None:
    """e1 (AE ae1) → e2 (AE ae2): a key e1 forwards but e2 does not match goes to ae2, not ae1."""
    async with channel(broker.url) as ch:
        declared = {}
        for suffix in ("ae1", "ae2"):
            declared[suffix] = await ch.declare_exchange(
                f"{name}.{suffix}", aio_pika.ExchangeType.FANOUT, auto_delete=True
            )
        e1 = await ch.declare_exchange(
            f"{name}.e1", aio_pika.ExchangeType.TOPIC, arguments={"alternate-exchange": f"{name}.ae1"}
        )
        e2 = await ch.declare_exchange(
            f"{name}.e2", aio_pika.ExchangeType.DIRECT, arguments={"alternate-exchange": f"{name}.ae2"}
        )
        await e2.bind(e1, routing_key="fwd.#")
        queues = {}
        for suffix in ("ae1", "ae2"):
            queues[suffix] = await ch.declare_queue(f"{name}.{suffix}.q", exclusive=True)
            await queues[suffix].bind(declared[suffix])
        await e1.publish(aio_pika.Message(b"via-e2"), routing_key="fwd.x")
        await e1.publish(aio_pika.Message(b"at-e1"), routing_key="other")
        assert await drain(queues["ae2"]) == [b"via-e2"]
        assert await drain(queues["ae1"]) == [b"at-e1"]
        await e1.delete()
        await e2.delete()


async def test_alternate_exchange_argument_must_be_a_string(broker: BrokerUnderTest, name: str) -> None:
    """A non-string ``alternate-exchange`` is 406, as RabbitMQ checks it (RabbitMQ names the wire type,
    which the embedded broker does not keep: ``byte`` here from aio-pika)."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed) as caught:
            await ch.declare_exchange(name, arguments={"alternate-exchange": 1})
        assert "for arg 'alternate-exchange' in exchange" in str(caught.value)


@pytest.mark.parametrize("crash", [False, True], ids=["clean-restart", "kill-9"])
async def test_durable_exchange_bindings_survive_a_restart(
    private_broker: EmbeddedBroker, crash: bool
) -> None:
    """A durable e1 → e2 binding (and e1's alternate exchange) route after a restart; an unbound one
    stays gone."""
    async with channel(private_broker.url) as ch:
        ae = await ch.declare_exchange("ae", aio_pika.ExchangeType.FANOUT, durable=True)
        e1 = await ch.declare_exchange(
            "e1", aio_pika.ExchangeType.DIRECT, durable=True, arguments={"alternate-exchange": "ae"}
        )
        e2 = await ch.declare_exchange("e2", aio_pika.ExchangeType.FANOUT, durable=True)
        queue = await ch.declare_queue("q", durable=True)
        strays = await ch.declare_queue("strays", durable=True)
        await queue.bind(e2)
        await strays.bind(ae)
        await e2.bind(e1, routing_key="kept")
        await e2.bind(e1, routing_key="dropped")
        await e2.unbind(e1, routing_key="dropped")
        # A confirmed persistent publish is fsync'd after the topology records: a kill -9 keeps them.
        await ch.default_exchange.publish(aio_pika.Message(b"sync", delivery_mode=2), routing_key="q")
    await private_broker.restart(crash=crash)
    async with channel(private_broker.url) as ch:
        e1 = await ch.get_exchange("e1")
        for key in ("kept", "dropped"):
            await e1.publish(aio_pika.Message(key.encode()), routing_key=key)
        assert await drain(await ch.get_queue("q")) == [b"sync", b"kept"]
        assert await drain(await ch.get_queue("strays")) == [b"dropped"]


def test_pika_redeclaring_with_another_alternate_exchange_is_406(broker: BrokerUnderTest, name: str) -> None:
    """alternate-exchange takes part in an exchange's equivalence check (other arguments do not)."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.exchange_declare(name, "direct", auto_delete=True, arguments={"alternate-exchange": "a"})
        for other in ({"alternate-exchange": "b"}, {}):
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
                ch.exchange_declare(name, "direct", auto_delete=True, arguments=other)
            assert caught.value.reply_code == 406
            assert "inequivalent arg 'alternate-exchange'" in caught.value.reply_text
            ch = conn.channel()
        ch.exchange_delete(name)
