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
