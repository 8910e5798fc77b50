"""A scenario's topology as RabbitMQ definitions JSON, importable in the management UI
(Overview → Import definitions) or with ``rabbitmqctl import_definitions``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker_sim.domain.scenario import QueueSpec, Scenario


def queue_arguments(
    q: QueueSpec, exchange_name: Callable[[str], str], routing_key: Callable[[str], str]
) -> dict[str, Any]:
    """A queue's ``x-`` arguments as RabbitMQ takes them, with broker names for what they point at.

    ``exchange_name`` maps a scenario exchange to the broker's name; ``routing_key`` maps a
    dead-letter key (on the default exchange it names a queue).
    """
    arguments: dict[str, Any] = {}
    if q.max_length is not None:
        arguments["x-max-length"] = q.max_length
    if q.message_ttl_ms is not None:
        arguments["x-message-ttl"] = q.message_ttl_ms
    if q.dead_letter_exchange is not None:
        arguments["x-dead-letter-exchange"] = exchange_name(q.dead_letter_exchange)
        if q.dead_letter_routing_key is not None:
            key = q.dead_letter_routing_key
            arguments["x-dead-letter-routing-key"] = routing_key(key) if q.dead_letter_exchange == "" else key
    if q.overflow is not None:
        arguments["x-overflow"] = q.overflow
    if q.max_priority is not None:
        arguments["x-max-priority"] = q.max_priority
    return arguments


def to_definitions(scenario: Scenario, vhost: str = "/", prefix: str = "") -> dict[str, Any]:
    """Exchanges, queues and bindings of a scenario, in RabbitMQ's definitions format.

    Server-named (``amq.gen-…``) and exclusive queues belong to one connection and cannot be
    predeclared: they are exported as ordinary queues named after the scenario's handle, so the
    routing can be tried by hand.
    """

    def exchange_name(name: str) -> str:
        return prefix + name if name else name

    def queue_name(name: str) -> str:
        return prefix + name if scenario.queue(name) is not None else name

    queues = [
        {
            "name": prefix + q.name,
            "vhost": vhost,
            "durable": q.durable,
            "auto_delete": q.auto_delete,
            "arguments": queue_arguments(q, exchange_name, queue_name),
        }
        for q in scenario.queues
    ]
    exchanges = [
        {
            "name": prefix + e.name,
            "vhost": vhost,
            "type": e.type,
            "durable": e.durable,
            "auto_delete": e.auto_delete,
            "internal": False,
            "arguments": {"alternate-exchange": prefix + e.alternate_exchange}
            if e.alternate_exchange
            else {},
        }
        for e in scenario.exchanges
    ]
    bindings = [
        {
            "source": prefix + b.exchange,
            "vhost": vhost,
            "destination": prefix + b.destination,
            "destination_type": "exchange" if b.to_exchange else "queue",
            "routing_key": b.routing_key,
            "arguments": {"x-match": b.match, **b.headers} if b.match else {},
        }
        for b in scenario.bindings
        if b.exchange  # the default exchange's implicit bindings are not definitions
    ]
    return {
        "rabbit_version": "3.10.8",
        "vhosts": [{"name": vhost}],
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
    }
