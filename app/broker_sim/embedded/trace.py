"""The firehose: ``amq.rabbitmq.trace`` messages in RabbitMQ's format (rabbit_trace.erl, 3.10).

A ``publish.<exchange>`` trace carries ``routed_queues``; a ``deliver.<queue>`` trace carries
``redelivered``. Both copy the body and list the message's properties in a ``properties`` table.
Traces are built only when something is bound to the trace exchange, so tracing costs nothing
until someone listens.
"""

from __future__ import annotations

from typing import Any

from broker_sim.embedded.codec import SignedInt, decode_table, encode_properties, encode_table
from broker_sim.embedded.queue import Message

TRACE_EXCHANGE = "amq.rabbitmq.trace"
NODE = "broker-sim@localhost"


def _properties_table(message: Message) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name, value in message.properties().items():
        if name == "headers":
            table[name] = decode_table(value)
        elif isinstance(value, int):
            table[name] = SignedInt(value)  # RabbitMQ writes octets and timestamps as signedint here
        else:
            table[name] = value
    return table


def _trace_props(headers: dict[str, Any]) -> bytes:
    return encode_properties({"headers": encode_table(headers)})


def publish_trace(
    message: Message, queues: list[str], vhost: str, connection: str, channel: int, user: str
) -> Message:
    """The ``publish.<exchange>`` trace of a message routed to ``queues``."""
    headers = {
        "exchange_name": message.exchange,
        "routing_keys": [message.routing_key],
        "properties": _properties_table(message),
        "node": NODE,
        "vhost": vhost,
        "connection": connection,
        "channel": SignedInt(channel),
        "user": user,
        "routed_queues": queues,
    }
    return Message(TRACE_EXCHANGE, f"publish.{message.exchange}", _trace_props(headers), message.body)


def deliver_trace(
    message: Message, queue: str, redelivered: bool, vhost: str, connection: str, channel: int, user: str
) -> Message:
    """The ``deliver.<queue>`` trace of a message handed to a consumer or a Basic.Get."""
    headers = {
        "exchange_name": message.exchange,
        "routing_keys": [message.routing_key],
        "properties": _properties_table(message),
        "node": NODE,
        "redelivered": SignedInt(int(redelivered)),
        "vhost": vhost,
        "connection": connection,
        "channel": SignedInt(channel),
        "user": user,
    }
    return Message(TRACE_EXCHANGE, f"deliver.{queue}", _trace_props(headers), message.body)
