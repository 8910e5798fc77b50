"""Behaviour a client library's own test suite relies on (aiormq's, run against both brokers)."""

from __future__ import annotations

import aiormq
import pytest

from tests.conformance.conftest import BrokerUnderTest


async def test_channel_numbers_up_to_65535_open(broker: BrokerUnderTest) -> None:
    """channel_max limits how many channels are open, not their numbers: channel 65535 opens."""
    conn = await aiormq.connect(broker.url)
    try:
        channel = await conn.channel(65535)
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await channel.queue_bind("no-such-queue-x", "no-such-exchange-x")
    finally:
        await conn.close()


async def test_passive_declare_of_the_default_exchange_is_403(broker: BrokerUnderTest) -> None:
    """Even a passive declare of the default exchange is refused, each time a channel reuses number 1."""
    conn = await aiormq.connect(broker.url)
    try:
        for _ in range(3):
            channel = await conn.channel(channel_number=1)
            with pytest.raises(aiormq.ChannelAccessRefused):
                await channel.exchange_declare("", passive=True)
    finally:
        await conn.close()


async def test_capabilities_are_advertised_as_on_rabbitmq(broker: BrokerUnderTest) -> None:
    """Clients switch features on by these: every one RabbitMQ 3.10 advertises is advertised."""
    conn = await aiormq.connect(broker.url)
    try:
        capabilities = conn.server_capabilities
    finally:
        await conn.close()
    expected = {
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    }
    assert {name for name, on in capabilities.items() if on} == expected
