"""A scenario's topology as RabbitMQ definitions JSON, importable in the management UI
(Overview → Import definitions) or with ``rabbitmqctl import_definitions``.
"""

from __future__ import annotations

from typing import Any

from broker_sim.domain.scenario import Scenario


def to_definitions(scenario: Scenario, vhost: str = "/", prefix: str = "") -> dict[str, Any]:
    """Exchanges, queues and bindings of a scenario, in RabbitMQ's definitions format.

    Server-named (``amq.gen-…``) and exclusive queues belong to one connection and cannot be
    predeclared: they are exported as ordinary queues named after the scenario's handle, so the
    routing can be tried by hand.
    """
    queues = [
        {
            "name": prefix + q.name,
            "vhost": vhost,
            "durable": q.durable,
            "auto_delete": q.auto_delete,
            "arguments": {
                **({"x-max-length": q.max_length} if q.max_length is not None else {}),
                **({"x-message-ttl": q.message_ttl_ms} if q.message_ttl_ms is not None else {}),
            },
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
            "arguments": {},
        }
        for e in scenario.exchanges
    ]
    bindings = [
        {
            "source": prefix + b.exchange,
            "vhost": vhost,
            "destination": prefix + b.queue,
            "destination_type": "queue",
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
