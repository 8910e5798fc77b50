"""AMQP transactions (``tx.select`` / ``commit`` / ``rollback``) as RabbitMQ 3.10 runs them.

A transactional channel holds its publishes and its acks, nacks and rejects until ``tx.commit``; then
they take effect in order, and ``commit-ok`` is sent once the persistent messages among them are on
disk. ``tx.rollback`` forgets the publishes and makes the held deliveries unacked again (they are
redelivered when the channel closes, unless acked again). Held deliveries still count against the
consumer's prefetch until the commit, as on RabbitMQ, where the ack reaches the queue only then.
A channel is in confirm mode or in tx mode, never both (406 either way).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pamqp import commands

from broker_sim.embedded.codec import method_frame
from broker_sim.embedded.errors import INTERNAL_ERROR, PRECONDITION_FAILED, AMQPError
from broker_sim.embedded.exchange import Exchange
from broker_sim.embedded.queue import Consumer, Message, Queue, QueuedMessage

if TYPE_CHECKING:
    from broker_sim.embedded.channel import Channel

Settled = tuple[QueuedMessage, Queue, "Consumer | None"]


@dataclass
class Transaction:
    """What a transactional channel holds until the next commit or rollback."""

    publishes: list[tuple[Exchange, Message, bool]] = field(default_factory=list)
    # (what to do: "ack" / "reject" / "requeue", the deliveries by their delivery tags)
    settlements: list[tuple[str, dict[int, Settled]]] = field(default_factory=list)

    def hold(self, channel: Channel, delivery_tag: int, multiple: bool, action: str) -> None:
        """An ack, nack or reject inside the transaction: checked now (406 for an unknown tag), applied at
        commit. The deliveries leave the channel's unacked set but keep their place in the prefetch."""
        before = dict(channel.unacked)
        channel._settle(delivery_tag, multiple)
        taken = {tag: item for tag, item in before.items() if tag not in channel.unacked}
        _count(channel, taken.values(), +1)
        self.settlements.append((action, taken))

    def commit(self, channel: Channel) -> bool:
        """Apply what was held, in order; True when something went to the store (commit-ok waits)."""
        publishes, settlements = self.publishes, self.settlements
        self.publishes, self.settlements = [], []
        persisted = False
        for exchange, message, mandatory in publishes:
            written, _ = channel.route_publish(exchange, message, mandatory)
            persisted = persisted or written
        for action, taken in settlements:
            _count(channel, taken.values(), -1)
            settled = list(taken.values())
            if action == "ack":
                channel.finish_acks(settled)
            else:
                channel.finish_rejects(settled, requeue=action == "requeue")
        return persisted

    def rollback(self, channel: Channel) -> None:
        """Forget held publishes; held deliveries are unacked again, in delivery-tag order."""
        restored: dict[int, Settled] = dict(channel.unacked)
        for _, taken in self.settlements:
            restored.update(taken)
        channel.unacked.clear()
        channel.unacked.update(sorted(restored.items()))
        self.publishes, self.settlements = [], []


def _count(channel: Channel, items: Iterable[Settled], delta: int) -> None:
    for _, _, consumer in items:
        if consumer is not None:
            consumer.unacked += delta
            channel._global_unacked += delta


def _not_transactional(method: tuple[int, int]) -> AMQPError:
    return AMQPError(PRECONDITION_FAILED, "channel is not transactional", method)


def tx_select(channel: Channel, m: commands.Tx.Select) -> None:
    """Tx.Select: 406 on a channel in confirm mode."""
    if channel.confirm:
        raise AMQPError(PRECONDITION_FAILED, "cannot switch from confirm to tx mode", (90, 10))
    if channel.tx is None:
        channel.tx = Transaction()
    channel.connection.send(method_frame(channel.number, 90, 11))


def tx_commit(channel: Channel, m: commands.Tx.Commit) -> None:
    """Tx.Commit: Commit-Ok once the committed persistent messages are fsync'd. When the write that
    held them fails, Commit-Ok never comes: the connection is closed with 541 INTERNAL_ERROR (a hard,
    connection-level error in AMQP 0-9-1), so the client cannot take the commit for done."""
    if channel.tx is None:
        raise _not_transactional((90, 20))
    persisted = channel.tx.commit(channel)
    store = channel.broker.store

    def commit_ok() -> None:
        if not channel.closing:
            channel.connection.send(method_frame(channel.number, 90, 21))

    if persisted and store is not None:
        mark = store.appended

        def on_synced() -> None:
            if mark <= store.synced:
                commit_ok()
            else:
                error = store.error.strerror if store.error is not None else "write failed"
                detail = f"tx.commit failed: the committed messages could not be written to disk ({error})"
                channel.connection.close_with(AMQPError(INTERNAL_ERROR, detail, (90, 20)))

        store.when_synced(mark, on_synced)
    else:
        commit_ok()


def tx_rollback(channel: Channel, m: commands.Tx.Rollback) -> None:
    """Tx.Rollback."""
    if channel.tx is None:
        raise _not_transactional((90, 30))
    channel.tx.rollback(channel)
    channel.connection.send(method_frame(channel.number, 90, 31))
