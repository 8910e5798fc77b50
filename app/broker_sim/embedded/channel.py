"""One AMQP channel: publishing (with confirms and returns), consuming, acks, and the methods of
exchanges and queues."""

from __future__ import annotations

import asyncio
import base64
import os
from collections import deque
from typing import TYPE_CHECKING, Any

from pamqp import commands

from broker_sim.embedded import codec
from broker_sim.embedded.codec import (
    CodecError,
    bits,
    deliver_frames,
    long,
    method_frame,
    reply_text,
    short,
    shortstr,
)
from broker_sim.embedded.errors import (
    ACCESS_REFUSED,
    FRAME_ERROR,
    NOT_ALLOWED,
    NOT_IMPLEMENTED,
    PRECONDITION_FAILED,
    UNEXPECTED_FRAME,
    AMQPError,
)
from broker_sim.embedded.exchange import Exchange
from broker_sim.embedded.queue import Consumer, Message, Queue, QueuedMessage
from broker_sim.embedded.quorum import delivery_limit, global_qos_refused, with_delivery_count
from broker_sim.embedded.reply_to import REPLY_MARKER, REPLY_TO, rewrite_reply_to
from broker_sim.embedded.routing import amqp_type_name, sender_selected
from broker_sim.embedded.trace import TRACE_EXCHANGE, deliver_trace, publish_trace
from broker_sim.embedded.tx import Transaction, tx_commit, tx_rollback, tx_select

if TYPE_CHECKING:
    from broker_sim.embedded.connection import Connection

MAX_MESSAGE_SIZE = 134_217_728
"""RabbitMQ 3.10's default ``max_message_size`` (128 MiB)."""


class Channel:
    """A channel of a connection. Errors raised as :class:`AMQPError` close it (or the connection)."""

    def __init__(self, connection: Connection, number: int) -> None:
        self.connection = connection
        self.broker = connection.broker
        self.number = number
        self.closing = False
        self.confirm = False
        self._publish_seq = 0
        self._ready_upto = 0  # highest publish seq that may be confirmed
        self._acked_upto = 0  # highest publish seq confirmed to the client
        self._waiting: deque[tuple[int, int]] = deque()  # (seq, store mark) waiting for an fsync
        self._sync_asked = 0
        self._nacked: set[int] = set()  # publishes refused by a queue (x-overflow reject-publish)
        self.reply_queue: Queue | None = None  # this channel's direct reply-to queue, while consuming
        self.tx: Transaction | None = None  # after Tx.Select: publishes and acks held until commit
        # consumer_timeout: a timer runs while deliveries are unacked; (tag, first seen) of the oldest.
        self._timeout_timer: asyncio.TimerHandle | None = None
        self._oldest = (0, 0.0)
        self.consumers: dict[str, Consumer] = {}
        self.unacked: dict[int, tuple[QueuedMessage, Queue, Consumer | None]] = {}
        self._next_tag = 1
        self._prefetch = 0  # for consumers started from now on
        self._prefetch_global = 0
        self._global_unacked = 0
        self._last_queue = ""
        # A publish being assembled: exchange, routing key, mandatory, then header and body parts.
        self._pending: tuple[Exchange, str, bool, bytes] | None = None
        self._props = b""
        self._body_size = 0
        self._parts: list[bytes] = []
        self._received = 0

    # --- frames ---------------------------------------------------------------------------------

    def on_publish(self, payload: bytes) -> None:
        """Basic.Publish: remember where it goes; the content follows."""
        try:
            exchange_name, routing_key, mandatory, immediate, address = codec.decode_publish(payload)
        except (CodecError, IndexError) as exc:
            raise AMQPError(codec_error_code(), f"cannot decode Basic.Publish: {exc}") from exc
        if immediate:
            raise AMQPError(NOT_IMPLEMENTED, "immediate=true", (60, 40))
        self._pending = (self.broker.exchange_for_publish(exchange_name), routing_key, mandatory, address)

    def expects_content(self) -> bool:
        """Whether a content header or body is due."""
        return self._pending is not None

    def on_header(self, payload: bytes) -> None:
        """The content header of the message being published."""
        if self._pending is None or self._parts or self._props:
            raise AMQPError(UNEXPECTED_FRAME, "expected method frame, got non method frame instead")
        try:
            size, props = codec.parse_content_header(payload)
        except CodecError as exc:
            raise AMQPError(codec_error_code(), str(exc)) from exc
        if size > MAX_MESSAGE_SIZE:
            self._pending = None
            raise AMQPError(
                PRECONDITION_FAILED,
                f"message size {size} is larger than configured max size {MAX_MESSAGE_SIZE}",
                (60, 40),
            )
        self._props, self._body_size, self._received = props, size, 0
        if size == 0:
            self._complete(b"")

    def on_body(self, payload: bytes) -> None:
        """A body frame of the message being published."""
        if self._pending is None or not self._props:
            raise AMQPError(
                UNEXPECTED_FRAME, "expected content header for class 60, got non content header frame instead"
            )
        self._received += len(payload)
        if self._received > self._body_size:
            raise AMQPError(codec_error_code(), "content body is longer than the content header said")
        if self._received == self._body_size:
            body = b"".join(self._parts) + payload if self._parts else payload
            self._parts = []
            self._complete(body)
        else:
            self._parts.append(payload)

    def _complete(self, body: bytes) -> None:
        assert self._pending is not None
        exchange, routing_key, mandatory, address = self._pending
        props = self._props
        self._pending, self._props = None, b""
        cc: tuple[str, ...] = ()
        if b"CC" in props or REPLY_MARKER in props:  # one scan each on the hot path, decoding only if so
            cc, props = sender_selected(props)
            props = rewrite_reply_to(props, self.reply_queue)
        try:
            message = Message.published(exchange.name, routing_key, props, body, address)
        except CodecError as exc:
            raise AMQPError(PRECONDITION_FAILED, str(exc), (60, 40)) from exc
        message.cc = cc
        if self.tx is not None:
            self.tx.publishes.append((exchange, message, mandatory))
            return
        persisted, refused = self.route_publish(exchange, message, mandatory)
        if self.confirm:
            self._publish_seq += 1
            seq = self._publish_seq
            if refused:
                self._nacked.add(seq)  # RabbitMQ nacks even when other queues took the message
            if persisted and self.broker.store is not None:
                self._waiting.append((seq, self.broker.store.appended))
            elif self._waiting:
                self._waiting.append((seq, 0))
            else:
                self._ready_upto = seq
            self.connection.confirms_due(self)

    def route_publish(self, exchange: Exchange, message: Message, mandatory: bool) -> tuple[bool, bool]:
        """Route a published message into its queues (or return it); (written to the store, refused by a
        full ``reject-publish`` queue)."""
        broker = self.broker
        queues = broker.route(exchange, message)
        if self.connection.tracing():
            self.connection.trace(
                publish_trace(
                    message,
                    [q.name for q in queues],
                    broker.vhost,
                    self.connection.name,
                    self.number,
                    self.connection.user,
                )
            )
        persisted = refused = False
        if queues:
            now = self.connection.clock()
            for queue in queues:
                if queue.arguments and queue.refuses_publish(message):
                    refused = True
                    if queue.overflow == "reject-publish-dlx":
                        broker.dead_letter(queue, QueuedMessage(message), "maxlen")
                    continue
                persisted = broker.enqueue(queue, message, now) or persisted
        elif mandatory:
            self.connection.send_many(
                codec.return_frames(
                    self.number,
                    312,
                    "NO_ROUTE",
                    exchange.name,
                    message.routing_key,
                    message.props,
                    message.body,
                    self.connection.frame_max,
                )
            )
        return persisted, refused

    def send_confirms(self) -> None:
        """Confirm what is ready in one Basic.Ack (multiple when it covers several); ask the store to
        call back for the rest."""
        store = self.broker.store
        if self._waiting and store is not None:
            mark = self._waiting[-1][1] or self._sync_asked
            if mark > self._sync_asked:
                self._sync_asked = mark
                store.when_synced(mark, self._on_synced)
        if self._nacked and not self.closing:
            for seq in sorted(n for n in self._nacked if n <= self._ready_upto):
                if seq - 1 > self._acked_upto:
                    self.connection.send(
                        codec.ack_frame(self.number, seq - 1, seq - 1 - self._acked_upto > 1)
                    )
                self.connection.send(codec.nack_frame(self.number, seq, False))
                self._acked_upto = seq
                self._nacked.discard(seq)
        if self._ready_upto > self._acked_upto and not self.closing:
            multiple = self._ready_upto - self._acked_upto > 1
            self.connection.send(codec.ack_frame(self.number, self._ready_upto, multiple))
            self._acked_upto = self._ready_upto

    def _on_synced(self) -> None:
        store = self.broker.store
        assert store is not None
        synced, failed = store.synced, store.failed_mark
        waiting = self._waiting
        while waiting and (waiting[0][1] <= synced or waiting[0][1] <= failed):
            seq, mark = waiting.popleft()
            if mark <= synced:
                self._ready_upto = seq
            else:
                # Its record was in a write that failed: never confirm it, nack it (after the acks before it).
                self.send_confirms()
                if not self.closing:
                    self.connection.send(codec.nack_frame(self.number, seq, False))
                self._ready_upto = self._acked_upto = seq
        if waiting and self._sync_asked <= failed:
            # The store answered our wait with a failure: wait again for what is left.
            self._sync_asked = 0
            for _, mark in reversed(waiting):
                if mark:
                    self._sync_asked = mark
                    store.when_synced(mark, self._on_synced)
                    break
        self.send_confirms()

    # --- delivery -------------------------------------------------------------------------------

    def can_deliver(self) -> bool:
        """Open, the client reads its socket, and under the channel-wide prefetch."""
        return (
            not self.closing
            and not self.connection.paused
            and (self._prefetch_global == 0 or self._global_unacked < self._prefetch_global)
        )

    def deliver(self, consumer: Consumer, queue: Queue, entry: QueuedMessage) -> None:
        """Basic.Deliver one message to one of this channel's consumers."""
        tag = self._next_tag
        self._next_tag = tag + 1
        message = entry.message
        self.connection.send(
            deliver_frames(
                self.number,
                consumer.tag_wire,
                tag,
                entry.redelivered,
                message.wire_address(),
                # RabbitMQ adds x-delivery-count to a consumer's delivery once it is above 0 (a Basic.Get
                # always carries it).
                with_delivery_count(message.props, entry.delivery_count)
                if queue.quorum and entry.delivery_count
                else message.props,
                message.body,
                self.connection.frame_max,
            )
        )
        if consumer.no_ack:
            self.broker.drop(entry)
        else:
            self.unacked[tag] = (entry, queue, consumer)
            consumer.unacked += 1
            self._global_unacked += 1
            if self._timeout_timer is None:
                self._arm_timeout()
        if self.connection.tracing():
            self._trace_delivery(message, queue, entry.redelivered)

    def _trace_delivery(self, message: Message, queue: Queue, redelivered: bool) -> None:
        if message.exchange != TRACE_EXCHANGE:
            self.connection.trace(
                deliver_trace(
                    message,
                    queue.name,
                    redelivered,
                    self.broker.vhost,
                    self.connection.name,
                    self.number,
                    self.connection.user,
                )
            )

    def _arm_timeout(self) -> None:
        # Checked at a quarter of the timeout (at most each minute, as RabbitMQ's channel tick).
        interval = min(self.broker.consumer_timeout_ms / 4000, 60.0)
        self._timeout_timer = asyncio.get_running_loop().call_later(interval, self._check_timeout)

    def _check_timeout(self) -> None:
        # The oldest unacked delivery is the first in ``unacked`` (tags ascend). It is timed from the
        # first check that saw it, so nothing is timed on the delivery path and nothing times out early.
        self._timeout_timer = None
        if self.closing or not self.unacked:
            self._oldest = (0, 0.0)
            return
        tag, now = next(iter(self.unacked)), self.connection.clock()
        if tag != self._oldest[0]:
            self._oldest = (tag, now)
        timeout = self.broker.consumer_timeout_ms
        if (now - self._oldest[1]) * 1000 >= timeout:
            self.connection.channel_failed(
                self,
                AMQPError(
                    PRECONDITION_FAILED,
                    f"delivery acknowledgement on channel {self.number} timed out. Timeout value used: "
                    f"{timeout} ms. This timeout value can be configured, see consumers doc guide to "
                    "learn more",
                ),
            )
            return
        self._arm_timeout()

    def cancel_from_broker(self, consumer: Consumer) -> None:
        """The queue was deleted: Basic.Cancel to the client (it advertised consumer_cancel_notify)."""
        if self.consumers.pop(consumer.tag, None) is not None and not self.closing:
            self.connection.send(method_frame(self.number, 60, 30, shortstr(consumer.tag), bits(False)))

    def _settle(
        self, delivery_tag: int, multiple: bool
    ) -> list[tuple[QueuedMessage, Queue, Consumer | None]]:
        unacked = self.unacked
        if multiple:
            tags = []
            for tag in unacked:
                if delivery_tag and tag > delivery_tag:
                    break
                tags.append(tag)
            if delivery_tag and delivery_tag not in unacked:
                raise AMQPError(PRECONDITION_FAILED, f"unknown delivery tag {delivery_tag}", (60, 80))
        else:
            if delivery_tag not in unacked:
                raise AMQPError(PRECONDITION_FAILED, f"unknown delivery tag {delivery_tag}", (60, 80))
            tags = [delivery_tag]
        settled = []
        for tag in tags:
            item = unacked.pop(tag)
            settled.append(item)
            consumer = item[2]
            if consumer is not None:
                consumer.unacked -= 1
                self._global_unacked -= 1
        return settled

    def on_ack(self, payload: bytes) -> None:
        """Basic.Ack from a consumer: the messages are done."""
        try:
            delivery_tag, multiple = codec.decode_ack(payload)
        except CodecError as exc:
            raise AMQPError(codec_error_code(), str(exc)) from exc
        if self.tx is not None:
            self.tx.hold(self, delivery_tag, multiple, "ack")
            return
        settled = self._settle(delivery_tag, multiple)
        self.finish_acks(settled)

    def finish_acks(self, settled: list[tuple[QueuedMessage, Queue, Consumer | None]]) -> None:
        """Acked messages leave the broker; their consumers may take more."""
        store = self.broker.store
        if store is not None:
            store.remove([entry.store_id for entry, _, _ in settled if entry.store_id])
        self._redispatch(settled)

    def _reject(self, delivery_tag: int, multiple: bool, requeue: bool) -> None:
        if self.tx is not None:
            self.tx.hold(self, delivery_tag, multiple, "requeue" if requeue else "reject")
            return
        self.finish_rejects(self._settle(delivery_tag, multiple), requeue)

    def finish_rejects(
        self, settled: list[tuple[QueuedMessage, Queue, Consumer | None]], requeue: bool
    ) -> None:
        """Rejected messages go back to their queues or are dead-lettered."""
        if requeue:
            self._requeue(settled)
        else:
            for entry, queue, _ in settled:
                queue.on_dead(queue, entry, "rejected") if queue.on_dead else self.broker.drop(entry)
            self._redispatch(settled)

    def _requeue(self, settled: list[tuple[QueuedMessage, Queue, Consumer | None]]) -> None:
        settled = self._count_returns(settled)
        by_queue: dict[Queue, list[QueuedMessage]] = {}
        for entry, queue, _ in settled:
            if queue.deleted:
                self.broker.drop(entry)
            else:
                by_queue.setdefault(queue, []).append(entry)
        for queue, entries in by_queue.items():
            queue.requeue(entries)

    def _count_returns(
        self, settled: list[tuple[QueuedMessage, Queue, Consumer | None]]
    ) -> list[tuple[QueuedMessage, Queue, Consumer | None]]:
        # A quorum queue counts every return (nack, reject, recover, channel closed); past
        # x-delivery-limit the message is dead-lettered instead of requeued.
        if not any(queue.quorum for _, queue, _ in settled):
            return settled
        returned = []
        for item in settled:
            entry, queue, _ = item
            if queue.quorum and not queue.deleted:
                entry.delivery_count += 1
                limit = delivery_limit(queue.arguments)
                if limit is not None and entry.delivery_count > limit and queue.on_dead is not None:
                    queue.on_dead(queue, entry, "delivery_limit")
                    continue
            returned.append(item)
        return returned

    def _redispatch(self, settled: list[tuple[QueuedMessage, Queue, Consumer | None]]) -> None:
        for queue in {id(q): q for _, q, _ in settled}.values():
            if queue.messages and queue.consumers:
                queue.dispatch()
        if self._prefetch_global:
            self.connection.redispatch()

    # --- the other methods ----------------------------------------------------------------------

    def on_method(self, method: Any) -> None:
        """Any method but Publish and Ack (decoded by pamqp)."""
        handler = _HANDLERS.get(type(method))
        if handler is None:
            raise AMQPError(
                NOT_IMPLEMENTED, f"method {method.name} is not implemented by broker-sim embedded"
            )
        handler(self, method)

    def _reply(self, class_id: int, method_id: int, *fields: bytes) -> None:
        self.connection.send(method_frame(self.number, class_id, method_id, *fields))

    def _queue_name(self, name: str) -> str:
        # An empty queue name means the last queue declared on this channel (AMQP 0-9-1).
        return name or self._last_queue

    def exchange_declare(self, m: commands.Exchange.Declare) -> None:
        """Exchange.Declare."""
        self.broker.declare_exchange(
            m.exchange,
            m.exchange_type,
            passive=m.passive,
            durable=m.durable,
            auto_delete=m.auto_delete,
            internal=m.internal,
            arguments=dict(m.arguments or {}),
        )
        if not m.nowait:
            self._reply(40, 11)

    def exchange_delete(self, m: commands.Exchange.Delete) -> None:
        """Exchange.Delete."""
        self.broker.delete_exchange(m.exchange, m.if_unused)
        if not m.nowait:
            self._reply(40, 21)

    def exchange_bind(self, m: commands.Exchange.Bind) -> None:
        """Exchange.Bind: an exchange-to-exchange binding."""
        self.broker.bind_exchange(m.destination, m.source, m.routing_key, dict(m.arguments or {}))
        if not m.nowait:
            self._reply(40, 31)

    def exchange_unbind(self, m: commands.Exchange.Unbind) -> None:
        """Exchange.Unbind."""
        self.broker.unbind_exchange(m.destination, m.source, m.routing_key, dict(m.arguments or {}))
        if not m.nowait:
            self._reply(40, 51)

    def queue_declare(self, m: commands.Queue.Declare) -> None:
        """Queue.Declare (server-named when the name is empty)."""
        if m.queue == REPLY_TO:
            # RabbitMQ answers for the pseudo-queue without creating anything.
            if not m.nowait:
                self._reply(50, 11, shortstr(REPLY_TO), long(0), long(1))
            return
        queue = self.broker.declare_queue(
            m.queue,
            self.connection,
            passive=m.passive,
            durable=m.durable,
            exclusive=m.exclusive,
            auto_delete=m.auto_delete,
            arguments=dict(m.arguments or {}),
        )
        self._last_queue = queue.name
        queue.touch()  # even a passive declare counts as use on RabbitMQ
        if not m.nowait:
            self._reply(50, 11, shortstr(queue.name), long(len(queue.messages)), long(len(queue.consumers)))

    def queue_bind(self, m: commands.Queue.Bind) -> None:
        """Queue.Bind."""
        self.broker.bind(
            m.exchange, self._queue_name(m.queue), m.routing_key, dict(m.arguments or {}), self.connection
        )
        if not m.nowait:
            self._reply(50, 21)

    def queue_unbind(self, m: commands.Queue.Unbind) -> None:
        """Queue.Unbind."""
        self.broker.unbind(
            m.exchange, self._queue_name(m.queue), m.routing_key, dict(m.arguments or {}), self.connection
        )
        self._reply(50, 51)

    def queue_purge(self, m: commands.Queue.Purge) -> None:
        """Queue.Purge: drops ready messages (unacked ones stay)."""
        count = self.broker.queue(self._queue_name(m.queue), self.connection).purge()
        if not m.nowait:
            self._reply(50, 31, long(count))

    def queue_delete(self, m: commands.Queue.Delete) -> None:
        """Queue.Delete."""
        count = self.broker.delete_queue(
            self._queue_name(m.queue), self.connection, if_unused=m.if_unused, if_empty=m.if_empty
        )
        if not m.nowait:
            self._reply(50, 41, long(count))

    def basic_qos(self, m: commands.Basic.Qos) -> None:
        """Basic.Qos: per consumer (global=false, applies to later consumers) or per channel."""
        if m.prefetch_size:
            raise AMQPError(NOT_IMPLEMENTED, f"prefetch_size!=0 ({m.prefetch_size})", (60, 10))
        if m.global_:
            self._prefetch_global = m.prefetch_count
        else:
            self._prefetch = m.prefetch_count
        self._reply(60, 11)
        self.connection.redispatch()

    def basic_consume(self, m: commands.Basic.Consume) -> None:
        """Basic.Consume: ConsumeOk first, then deliveries."""
        queue = (
            self._open_reply_queue(m)
            if m.queue == REPLY_TO
            else self.broker.queue(self._queue_name(m.queue), self.connection)
        )
        tag = m.consumer_tag or "amq.ctag-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if tag in self.consumers:
            raise AMQPError(NOT_ALLOWED, f"attempt to reuse consumer tag '{tag}'", (60, 20))
        if queue.quorum and self._prefetch_global:
            raise global_qos_refused(queue.name, self.broker.vhost)
        if queue.consumers and (m.exclusive or any(c.exclusive for c in queue.consumers)):
            raise AMQPError(
                ACCESS_REFUSED,
                f"queue '{queue.name}' in vhost '{self.broker.vhost}' in exclusive use",
                (60, 20),
            )
        consumer = Consumer(tag, self, queue, m.no_ack, self._prefetch, m.exclusive, tag_wire=shortstr(tag))
        priority = (m.arguments or {}).get("x-priority")
        if priority is not None:
            consumer.priority = consumer_priority(priority, queue.name, self.broker.vhost)
            queue.consumer_priorities = True
        if not m.nowait:
            self._reply(60, 21, shortstr(tag))
        self.consumers[tag] = consumer
        queue.consumers.append(consumer)
        queue.ever_consumed = True
        queue.touch()
        queue.dispatch()

    def _open_reply_queue(self, m: commands.Basic.Consume) -> Queue:
        if not m.no_ack:
            raise AMQPError(PRECONDITION_FAILED, "reply consumer cannot acknowledge", (60, 20))
        if self.reply_queue is not None:
            raise AMQPError(PRECONDITION_FAILED, "reply consumer already set", (60, 20))
        self.reply_queue = self.broker.replies.open(self.broker.vhost)
        return self.reply_queue

    def basic_cancel(self, m: commands.Basic.Cancel) -> None:
        """Basic.Cancel: unacked messages stay unacked on the channel."""
        tag = m.consumer_tag or ""
        consumer = self.consumers.pop(tag, None)
        if not m.nowait:
            self._reply(60, 31, shortstr(tag))
        if consumer is not None:
            self._drop_consumer(consumer)

    def _drop_consumer(self, consumer: Consumer) -> None:
        queue = consumer.queue
        if queue is self.reply_queue:
            self.broker.replies.close(queue)
            self.reply_queue = None
            return
        if consumer in queue.consumers:
            queue.consumers.remove(consumer)
            self.broker.consumer_gone(queue)
            queue.touch()
            if queue.messages and queue.consumers:
                queue.dispatch()  # a single active consumer's successor takes over now

    def basic_get(self, m: commands.Basic.Get) -> None:
        """Basic.Get: GetOk with the head message, or GetEmpty."""
        queue = self.broker.queue(self._queue_name(m.queue), self.connection)
        queue.touch()
        entry = queue.take()
        if entry is None:
            self._reply(60, 72, shortstr(""))
            return
        tag = self._next_tag
        self._next_tag += 1
        message = entry.message
        self.connection.send_many(
            codec.get_ok_frames(
                self.number,
                tag,
                entry.redelivered,
                message.exchange,
                message.routing_key,
                len(queue.messages),
                with_delivery_count(message.props, entry.delivery_count) if queue.quorum else message.props,
                message.body,
                self.connection.frame_max,
            )
        )
        if m.no_ack:
            self.broker.drop(entry)
        else:
            self.unacked[tag] = (entry, queue, None)
            if self._timeout_timer is None:
                self._arm_timeout()
        if self.connection.tracing():
            self._trace_delivery(message, queue, entry.redelivered)

    def basic_reject(self, m: commands.Basic.Reject) -> None:
        """Basic.Reject."""
        self._reject(m.delivery_tag or 0, False, bool(m.requeue))

    def basic_nack(self, m: commands.Basic.Nack) -> None:
        """Basic.Nack."""
        self._reject(m.delivery_tag, m.multiple, m.requeue)

    def basic_recover(self, m: commands.Basic.Recover | commands.Basic.RecoverAsync) -> None:
        """Basic.Recover with requeue (RabbitMQ does not implement requeue=false either)."""
        if not m.requeue:
            raise AMQPError(NOT_IMPLEMENTED, "requeue=false", (60, 110))
        self._requeue(self._settle(0, True))
        if isinstance(m, commands.Basic.Recover):
            self._reply(60, 111)

    def confirm_select(self, m: commands.Confirm.Select) -> None:
        """Confirm.Select: publisher confirms from now on."""
        if self.tx is not None:
            raise AMQPError(PRECONDITION_FAILED, "cannot switch from tx to confirm mode", (85, 10))
        self.confirm = True
        if not m.nowait:
            self._reply(85, 11)

    def channel_flow(self, m: commands.Channel.Flow) -> None:
        """Channel.Flow: RabbitMQ 3.x only accepts active=true."""
        if not m.active:
            raise AMQPError(NOT_IMPLEMENTED, "active=false", (20, 20))
        self._reply(20, 21, bits(True))

    # --- closing --------------------------------------------------------------------------------

    def teardown(self) -> None:
        """The channel closes: cancel its consumers, requeue its unacked messages as redelivered."""
        self.closing = True
        self._pending, self._props, self._parts = None, b"", []
        if self.tx is not None:
            self.tx.rollback(self)  # uncommitted acks: the messages are unacked again, so requeued below
        for consumer in list(self.consumers.values()):
            self._drop_consumer(consumer)
        self.consumers.clear()
        settled = list(self.unacked.values())
        self.unacked.clear()
        self._requeue(settled)

    def close_frame(self, error: AMQPError) -> bytes:
        """Channel.Close for an error."""
        class_id, method_id = error.method
        return method_frame(
            self.number, 20, 40, short(error.code), reply_text(error.text), short(class_id), short(method_id)
        )


def consumer_priority(value: object, queue: str, vhost: str) -> int:
    """``x-priority`` of Basic.Consume: an integer, else 406 as on RabbitMQ."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise AMQPError(
            PRECONDITION_FAILED,
            f"invalid arg 'x-priority' for queue '{queue}' in vhost '{vhost}': "
            f'"expected integer, got {amqp_type_name(value)}"',
            (60, 20),
        )
    return value


def codec_error_code() -> int:
    """Undecodable frames are a FRAME_ERROR on RabbitMQ."""
    return FRAME_ERROR


_HANDLERS: dict[type, Any] = {
    commands.Exchange.Declare: Channel.exchange_declare,
    commands.Exchange.Delete: Channel.exchange_delete,
    commands.Exchange.Bind: Channel.exchange_bind,
    commands.Exchange.Unbind: Channel.exchange_unbind,
    commands.Queue.Declare: Channel.queue_declare,
    commands.Queue.Bind: Channel.queue_bind,
    commands.Queue.Unbind: Channel.queue_unbind,
    commands.Queue.Purge: Channel.queue_purge,
    commands.Queue.Delete: Channel.queue_delete,
    commands.Basic.Qos: Channel.basic_qos,
    commands.Basic.Consume: Channel.basic_consume,
    commands.Basic.Cancel: Channel.basic_cancel,
    commands.Basic.Get: Channel.basic_get,
    commands.Basic.Reject: Channel.basic_reject,
    commands.Basic.Nack: Channel.basic_nack,
    commands.Basic.Recover: Channel.basic_recover,
    commands.Basic.RecoverAsync: Channel.basic_recover,
    commands.Confirm.Select: Channel.confirm_select,
    commands.Channel.Flow: Channel.channel_flow,
    commands.Tx.Select: tx_select,
    commands.Tx.Commit: tx_commit,
    commands.Tx.Rollback: tx_rollback,
}
