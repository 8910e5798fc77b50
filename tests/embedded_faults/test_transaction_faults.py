"""``tx.commit`` under store faults, on the real broker process: Commit-Ok is sent only once the
committed persistent messages are on disk, so it never comes for one whose write failed, and a kill -9
right after it loses nothing."""

from __future__ import annotations

import pika
import pytest

from broker_sim.embedded.launch import EmbeddedBroker
from tests.conformance.clients import pika_connection
from tests.embedded_faults.conftest import BrokerFactory

PERSISTENT = pika.BasicProperties(delivery_mode=2)
# Write 1 is the queue's declare; the first commit's write (2) and the five after it fail their fsync
# (the file is cut back each time). The store pauses 0.05, 0.1, … 1.6 s between retries, so for about
# 3 s nothing reaches the disk: a Commit-Ok sent without waiting for the fsync would be followed by a
# kill that loses the message.
FAILING_FSYNCS = ",".join(f"fsync@{n}=EIO" for n in range(2, 8))


def _commit_one(broker: EmbeddedBroker, body: bytes) -> None:
    """Publish one persistent message to the durable queue ``q`` in a transaction and commit it."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.queue_declare("q", durable=True)
        ch.tx_select()
        ch.basic_publish("", "q", body, PERSISTENT)
        ch.tx_commit()


def _bodies(broker: EmbeddedBroker) -> list[bytes]:
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        count = int(ch.queue_declare("q", durable=True).method.message_count)
        return [ch.basic_get("q", auto_ack=True)[2] for _ in range(count)]


def test_a_commit_whose_fsync_fails_gets_541_never_commit_ok(start_broker: BrokerFactory) -> None:
    """The fsync of the committed message fails: no Commit-Ok, the connection is closed with
    541 INTERNAL_ERROR naming the failure."""
    broker = start_broker(faults=FAILING_FSYNCS)
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as caught:
        _commit_one(broker, b"unwritten")
    assert caught.value.reply_code == 541
    assert "tx.commit failed" in caught.value.reply_text
    assert "Input/output error" in caught.value.reply_text


def test_a_kill_right_after_commit_ok_loses_nothing(start_broker: BrokerFactory) -> None:
    """Commits are tried one after the other while the store's writes fail: each is answered 541
    until a write succeeds, then one gets Commit-Ok; a kill -9 at once after it loses nothing."""
    broker = start_broker(faults=FAILING_FSYNCS)
    refused: list[tuple[int, bytes]] = []
    for attempt in range(20):  # six failing writes: at most six refusals
        body = b"commit %d" % attempt
        try:
            _commit_one(broker, body)
            break
        except pika.exceptions.ConnectionClosedByBroker as error:
            refused.append((error.reply_code, body))
    else:
        raise AssertionError(f"no commit went through after {len(refused)} attempts")
    broker.kill_sync()
    broker.start_sync()
    # The refused ones were never acknowledged to their publisher (the store kept retrying them, so
    # some may be there too); the committed one must be.
    assert body in _bodies(broker)
    assert refused, "no commit met the failing writes: the test checked nothing"
    assert {code for code, _ in refused} == {541}
