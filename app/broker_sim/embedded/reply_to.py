"""Direct reply-to (``amq.rabbitmq.reply-to``), RabbitMQ's queue-less RPC replies.

A channel consuming (no-ack) from the pseudo-queue ``amq.rabbitmq.reply-to`` gets a private reply queue
named ``amq.rabbitmq.reply-to.<token>``; a message it publishes with ``reply_to`` set to the pseudo-queue
has that property rewritten to the private name, and a reply published to the default exchange with the
private name as routing key goes straight to the consumer. The reply queue is not in the vhost's queue
list (it cannot be declared, bound or listed) and goes away with its consumer.
"""

from __future__ import annotations

import base64
import os

from broker_sim.embedded.codec import CodecError, decode_properties, encode_properties
from broker_sim.embedded.errors import PRECONDITION_FAILED, AMQPError
from broker_sim.embedded.queue import Queue

REPLY_TO = "amq.rabbitmq.reply-to"
REPLY_PREFIX = REPLY_TO + "."
REPLY_MARKER = bytes((len(REPLY_TO),)) + REPLY_TO.encode()
"""How ``reply_to: amq.rabbitmq.reply-to`` looks in raw properties (a quick test before decoding)."""


class DirectReplyTo:
    """The reply queues of the channels consuming from ``amq.rabbitmq.reply-to``."""

    def __init__(self) -> None:
        self._queues: dict[str, Queue] = {}

    def queue(self, name: str) -> Queue | None:
        """The reply queue a routing key names, if that consumer is still there."""
        if not name.startswith(REPLY_PREFIX):
            return None
        return self._queues.get(name)

    def open(self, vhost: str) -> Queue:
        """A new reply queue for one consumer."""
        token = base64.urlsafe_b64encode(os.urandom(18)).decode()
        queue = Queue(REPLY_PREFIX + token, vhost)
        self._queues[queue.name] = queue
        return queue

    def close(self, queue: Queue) -> None:
        """The consumer went: replies to it are dropped from now on."""
        if self._queues.pop(queue.name, None) is queue:
            queue.purge()
            queue.close()
            queue.deleted = True

    def __len__(self) -> int:
        return len(self._queues)


def rewrite_reply_to(props: bytes, reply_queue: Queue | None) -> bytes:
    """Properties with ``reply_to: amq.rabbitmq.reply-to`` pointed at the publishing channel's reply
    queue; 406 when that channel has no reply consumer, as on RabbitMQ."""
    if REPLY_MARKER not in props:
        return props
    try:
        decoded = decode_properties(props)
    except CodecError:
        return props
    if decoded.get("reply_to") != REPLY_TO:
        return props
    if reply_queue is None:
        raise AMQPError(PRECONDITION_FAILED, "fast reply consumer does not exist", (60, 40))
    decoded["reply_to"] = reply_queue.name
    return encode_properties(decoded)
