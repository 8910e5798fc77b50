"""The store under faults, on the real broker process: failed writes and fsyncs, torn and damaged
logs, kill -9 in the middle of a burst, compaction while publishers run. Every confirmed message in
a durable queue comes back; a publish is confirmed or nacked, never left hanging."""

from __future__ import annotations

import asyncio
import contextlib
import struct

import pytest

from broker_sim.embedded.store import MESSAGE, decode_message
from tests.embedded_faults.conftest import BrokerFactory
from tests.embedded_faults.support import (
    DEADLINE,
    Drainer,
    bodies_in,
    body,
    log_lines,
    publish_confirmed,
    publisher,
    records,
    seq_of,
)


@pytest.mark.parametrize("fault", ["write@3=EIO", "fsync@3=EIO", "write@3=ENOSPC"])
async def test_a_failed_write_is_nacked_never_confirmed(start_broker: BrokerFactory, fault: str) -> None:
    """The third log write fails (half written, or its fsync fails): its publishes are nacked, the
    file is cut back (no damaged record is left mid-log), later writes confirm, and after kill -9
    every confirmed message is there."""
    broker = start_broker(faults=fault)
    client = await publisher(broker, "q")
    try:
        for _ in range(6):
            for _ in range(20):
                client.publish("q", body(client.sent + 1))
            await client.wait("settled", DEADLINE)
    finally:
        await client.close()
    outcomes = client.outcomes
    assert outcomes.nacked, "the injected failure reached no publish"
    assert max(outcomes.confirmed) > max(outcomes.nacked), "writing did not work again after the failure"
    assert not outcomes.confirmed & outcomes.nacked
    broker.kill_sync()
    broker.start_sync()
    present = set(await bodies_in(broker.url, "q"))
    assert outcomes.confirmed <= present
    assert not log_lines(broker, "damaged record|torn tail")


async def test_a_torn_tail_is_dropped_and_everything_before_it_kept(start_broker: BrokerFactory) -> None:
    """A crash in the middle of a write leaves half a record at the end: it is dropped, nothing else."""
    broker = start_broker()
    await publish_confirmed(broker, "q", 200)
    broker.kill_sync()
    path = broker.data_dir / "store.log"
    path.write_bytes(path.read_bytes() + struct.pack(">IIB", 1000, 0, MESSAGE) + b"half a record")
    broker.start_sync()
    assert sorted(await bodies_in(broker.url, "q")) == list(range(1, 201))
    assert log_lines(broker, "dropping a torn tail")


@pytest.mark.parametrize("where", ["payload", "length"])
async def test_a_damaged_record_mid_log_is_reported_and_what_follows_kept(
    start_broker: BrokerFactory, where: str
) -> None:
    """One damaged message record in the middle of the log (its payload, or its length field) costs
    that message only: the records after it are replayed, the damage is reported, the log kept."""
    broker = start_broker()
    await publish_confirmed(broker, "q", 200)
    broker.stop_sync()
    path = broker.data_dir / "store.log"
    data = bytearray(path.read_bytes())
    messages = [r for r in records(path) if r[2] == MESSAGE]
    offset, size, _ = messages[len(messages) // 2]
    damaged = seq_of(decode_message(bytes(data[offset + 9 : offset + size])).body)
    if where == "payload":
        data[offset + size - 3] ^= 0xFF
    else:
        data[offset : offset + 4] = struct.pack(">I", 0x00FFFFFF)
    path.write_bytes(bytes(data))
    broker.start_sync()
    assert sorted(await bodies_in(broker.url, "q")) == [i for i in range(1, 201) if i != damaged]
    assert log_lines(broker, "skipping a damaged record")
    assert list(broker.data_dir.glob("store.log.damaged-*"))


async def test_kill_9_in_the_middle_of_a_burst_loses_nothing_confirmed(start_broker: BrokerFactory) -> None:
    """kill -9 while persistent messages pour in and are being written: every confirmed one is back.

    The publisher keeps publishing until the kill: a fixed burst could be all written and confirmed
    before a starved test process got round to the kill (seen under load)."""
    broker = start_broker()
    client = await publisher(broker, "q")
    killed = asyncio.Event()

    async def pour() -> None:
        while not killed.is_set():
            for _ in range(500):
                client.publish("q", body(client.sent + 1, 256))
            await client.writer.drain()  # the socket's pace, not an ever-growing buffer
            await asyncio.sleep(0)  # drain() does not yield below its high-water mark: let the reader run

    pouring = asyncio.create_task(pour())
    try:
        await client.wait("confirmed>=1000", DEADLINE)
        broker.kill_sync()
    finally:
        killed.set()
        with contextlib.suppress(ConnectionError):
            await pouring
        await client.close()
    confirmed = set(client.outcomes.confirmed)
    assert len(confirmed) < client.sent, "every publish was confirmed: the kill came after the writes"
    broker.start_sync()
    present = await bodies_in(broker.url, "q")
    assert confirmed <= set(present)
    assert len(present) == len(set(present))
    print(f"\nkill -9 mid-burst: {client.sent} sent, {len(confirmed)} confirmed, {len(present)} recovered")


@pytest.mark.parametrize("fault", ["", "compact@2=EIO"], ids=["compactions", "a-compaction-fails"])
async def test_compaction_while_publishers_run_loses_nothing_confirmed(
    start_broker: BrokerFactory, fault: str
) -> None:
    """With compaction forced whenever the log holds twice what is live (and, in one run, the second
    compaction failing), a publisher and a consumer run at once; every publish is confirmed or nacked,
    and after kill -9 every confirmed message that was not consumed is back."""
    broker = start_broker(faults=",".join(filter(None, ["compact-slack=0", fault])))
    client = await publisher(broker, "q")
    consumer = await Drainer(broker.url, "q").start()
    try:
        for round_ in range(1, 11):
            for _ in range(200):
                client.publish("q", body(client.sent + 1))
            await client.wait("settled", DEADLINE)
            await consumer.wait_for(150 * round_)
    finally:
        await consumer.stop()
        await client.close()
    assert len(log_lines(broker, "compacted to")) >= 2, "compaction did not run while publishing"
    if fault:
        assert log_lines(broker, "writing the log failed"), "the injected compaction failure did not happen"
    else:
        assert len(client.outcomes.confirmed) == 2000
    broker.kill_sync()
    broker.start_sync()
    present = set(await bodies_in(broker.url, "q"))
    assert client.outcomes.confirmed - set(consumer.seqs) <= present
