"""Queue types: what a quorum queue means on one node, and the types this broker refuses.

A quorum queue here is a classic queue with the rules RabbitMQ 3.10 applies to quorum queues that one
node can show: it must be durable, neither exclusive nor auto-delete, and refuses the arguments quorum
queues do not support (406); every delivery carries an ``x-delivery-count`` header (how many times it
was returned by a nack or reject with requeue); with ``x-delivery-limit`` a message returned more often
than that is dead-lettered (reason ``delivery_limit``) or dropped; consuming with a channel-wide
(global) prefetch is ``540``. There are no replicas, so no leader election to show. Stream queues are
refused with a clear 406: the embedded broker does not implement them.
"""

from __future__ import annotations

from typing import Any

from broker_sim.embedded.codec import (
    CodecError,
    decode_properties,
    encode_entry,
    encode_properties,
    table_entries,
    table_from_entries,
)
from broker_sim.embedded.errors import NOT_IMPLEMENTED, PRECONDITION_FAILED, AMQPError

QUEUE_TYPES = ("classic", "quorum")
# Arguments RabbitMQ 3.10 refuses for a quorum queue.
NOT_FOR_QUORUM = ("x-max-priority", "x-queue-mode", "x-queue-master-locator", "x-queue-version")


def queue_type(arguments: dict[str, Any]) -> str:
    """``x-queue-type``, ``classic`` when absent."""
    value = arguments.get("x-queue-type")
    return value if isinstance(value, str) else "classic"


def check_queue_type(
    name: str, vhost: str, *, durable: bool, exclusive: bool, auto_delete: bool, arguments: dict[str, Any]
) -> None:
    """406 for a queue type this broker does not have, and for what a quorum queue cannot be."""
    kind = queue_type(arguments)
    where = f"for queue '{name}' in vhost '{vhost}'"
    if kind not in QUEUE_TYPES:
        detail = " (the broker-sim embedded broker does not implement streams)" if kind == "stream" else ""
        raise AMQPError(
            PRECONDITION_FAILED,
            f"invalid arg 'x-queue-type' {where}: \"unsupported queue type '{kind}'\"{detail}",
        )
    if kind != "quorum":
        return
    for refused, why in (
        (not durable, "non-durable"),
        (exclusive, "exclusive-owner"),
        (auto_delete, "auto-delete"),
    ):
        if refused:
            raise AMQPError(PRECONDITION_FAILED, f"invalid property '{why}' {where}")
    for arg in NOT_FOR_QUORUM:
        if arg in arguments:
            raise AMQPError(
                PRECONDITION_FAILED, f"invalid arg '{arg}' {where} of queue type rabbit_quorum_queue"
            )


def delivery_limit(arguments: dict[str, Any]) -> int | None:
    """``x-delivery-limit`` of a quorum queue, when set to a number."""
    value = arguments.get("x-delivery-limit")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def with_delivery_count(props: bytes, count: int) -> bytes:
    """The properties with ``x-delivery-count`` set in the headers, as a quorum queue delivers them."""
    try:
        decoded = decode_properties(props)
        raw = decoded.get("headers")
        kept = [entry for key, _, entry in (table_entries(raw) if raw else ()) if key != "x-delivery-count"]
    except CodecError:
        return props
    decoded["headers"] = table_from_entries([*kept, encode_entry("x-delivery-count", count)])
    return encode_properties(decoded)


def global_qos_refused(name: str, vhost: str) -> AMQPError:
    """Consuming from a quorum queue with a global prefetch: a connection error on RabbitMQ 3.10."""
    return AMQPError(
        NOT_IMPLEMENTED, f"queue '{name}' in vhost '{vhost}' does not support global qos", (60, 20)
    )


def quorum_delete_refused(name: str, vhost: str, flag: str) -> AMQPError:
    """Queue.Delete with if-empty / if-unused on a quorum queue: a connection error on RabbitMQ 3.10."""
    return AMQPError(
        NOT_IMPLEMENTED,
        f"cannot delete queue '{name}' in vhost '{vhost}'. queue.delete operations with {flag} flag set "
        "are not supported by quorum queues",
        (50, 40),
    )
