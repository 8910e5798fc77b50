"""What a restart brings back: a dead-lettered message is never lost between its two records, an
exclusive queue never comes back (even after a compaction wrote the log while it existed)."""

from __future__ import annotations

import aio_pika
import aiormq.exceptions
import pytest

from broker_sim.embedded.store import MESSAGE, REMOVE, decode_message
from tests.conformance.clients import channel
from tests.embedded_faults.conftest import BrokerFactory
from tests.embedded_faults.support import log_lines, records

PERSISTENT = aio_pika.DeliveryMode.PERSISTENT


async def test_dead_lettering_writes_the_new_copy_first(
    start_broker: BrokerFactory,
) -> None:
    """A rejected message moves to the dead-letter queue: the new copy's record comes first, so a
    crash between the two records leaves two copies, never none."""
    broker = start_broker()
    async with channel(broker.url) as ch:
        await ch.declare_queue("dlq", durable=True)
        source = await ch.declare_queue(
            "src", durable=True, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"}
        )
        await ch.default_exchange.publish(aio_pika.Message(b"job", delivery_mode=PERSISTENT), "src")
        message = await source.get(no_ack=False)
        assert message is not None
        await message.reject(requeue=False)
        # A confirmed publish after the reject: the log then holds both records of the move.
        await ch.default_exchange.publish(aio_pika.Message(b"marker", delivery_mode=PERSISTENT), "dlq")
    broker.kill_sync()
    path = broker.data_dir / "store.log"
    data = path.read_bytes()
    copies = {}
    removes = []
    for offset, size, kind in records(path):
        payload = data[offset + 9 : offset + size]
        if kind == MESSAGE:
            stored = decode_message(payload)
            copies[(stored.queue, stored.body)] = offset
        elif kind == REMOVE:
            removes.append(offset)
    moved_at = copies[("dlq", b"job")]
    removed_at = [offset for offset in removes if offset > copies[("src", b"job")]]
    assert removed_at and moved_at < removed_at[0]
    path.write_bytes(data[: removed_at[0]])  # a crash between the two records
    broker.start_sync()
    async with channel(broker.url) as ch:
        kept = {
            name: (await ch.declare_queue(name, passive=True)).declaration_result.message_count
            for name in ("src", "dlq")
        }
    assert kept == {"src": 1, "dlq": 1}


@pytest.mark.parametrize("crash", [False, True], ids=["clean-restart", "kill-9"])
async def test_an_exclusive_queue_does_not_come_back(start_broker: BrokerFactory, crash: bool) -> None:
    """An exclusive queue declared durable is gone after a restart, even when a compaction wrote the
    log while it existed."""
    broker = start_broker(faults="compact-slack=0")
    async with channel(broker.url) as ch:
        await ch.declare_queue("mine", durable=True, exclusive=True)
        work = await ch.declare_queue("work", durable=True)
        for i in range(20):
            await ch.default_exchange.publish(aio_pika.Message(b"%d" % i, delivery_mode=PERSISTENT), "work")
        for _ in range(20):
            message = await work.get(no_ack=False)
            assert message is not None
            await message.ack()
        await ch.default_exchange.publish(aio_pika.Message(b"flush", delivery_mode=PERSISTENT), "work")
        assert log_lines(broker, "compacted to"), "no compaction ran while the exclusive queue existed"
        if crash:
            broker.kill_sync()
    if not crash:
        broker.stop_sync()
    broker.start_sync()
    async with channel(broker.url) as ch:
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await ch.declare_queue("mine", passive=True)
