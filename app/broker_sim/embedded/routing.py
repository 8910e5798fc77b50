"""Routing beyond one exchange, as RabbitMQ 3.10 does it: exchange-to-exchange bindings, alternate
exchanges and sender-selected distribution (``CC`` / ``BCC`` headers).

RabbitMQ's ``rabbit_exchange:route/2`` walks a work list of exchanges, each visited once (so a cycle of
bindings ends), collecting queues. An exchange that matches nothing at all (no queue and no exchange)
hands the message to its ``alternate-exchange``, if that exchange exists; so in a chain the alternate
exchange of the exchange that matched nothing is the one used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker_sim.embedded.codec import (
    CodecError,
    decode_properties,
    encode_properties,
    table_entries,
    table_from_entries,
)
from broker_sim.embedded.errors import PRECONDITION_FAILED, AMQPError
from broker_sim.embedded.exchange import Exchange

ALTERNATE_EXCHANGE = "alternate-exchange"


def alternate_of(exchange: Exchange) -> str | None:
    """The name in an exchange's ``alternate-exchange`` argument, when it has one."""
    value = exchange.arguments.get(ALTERNATE_EXCHANGE)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


def needs_graph(exchange: Exchange) -> bool:
    """Whether routing from this exchange can leave it (bindings to exchanges, an alternate exchange)."""
    return exchange.forward is not None or ALTERNATE_EXCHANGE in exchange.arguments


def route_graph(
    exchanges: dict[str, Exchange],
    start: Exchange,
    keys: Sequence[str],
    headers: dict[str, Any] | None,
) -> list[str]:
    """Names of the queues a message published to ``start`` reaches, each once, in routing order."""
    seen = {start.name}
    work = [start]
    queues: dict[str, None] = {}
    while work:
        exchange = work.pop(0)
        matched_queues: list[str] = []
        matched_exchanges: list[str] = []
        for key in keys:
            matched_queues.extend(exchange.route(key, headers))
            if exchange.forward is not None:
                matched_exchanges.extend(exchange.forward.route(key, headers))
        if not matched_queues and not matched_exchanges:
            alternate = alternate_of(exchange)
            if alternate is not None:
                matched_exchanges.append(alternate)
        queues.update(dict.fromkeys(matched_queues))
        for name in matched_exchanges:
            following = exchanges.get(name)
            if following is not None and name not in seen:
                seen.add(name)
                work.append(following)
    return list(queues)


def check_alternate_argument(name: str, vhost: str, arguments: dict[str, Any]) -> None:
    """``alternate-exchange`` must be a string, as RabbitMQ checks on Exchange.Declare."""
    value = arguments.get(ALTERNATE_EXCHANGE)
    if value is not None and not isinstance(value, str | bytes):
        raise AMQPError(
            PRECONDITION_FAILED,
            f"invalid type '{amqp_type_name(value)}' for arg '{ALTERNATE_EXCHANGE}' in exchange "
            f"'{name}' in vhost '{vhost}'",
        )


def amqp_type_name(value: Any) -> str:
    """The field-table type name RabbitMQ uses in its error texts for a decoded value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    return "longstr"


def sender_selected(props: bytes) -> tuple[tuple[str, ...], bytes]:
    """The extra routing keys of ``CC`` and ``BCC``, and the properties to store (``BCC`` removed).

    Only arrays are accepted (RabbitMQ closes the channel with 406 ``unacceptable_type_in_header``
    for anything else); array items that are not strings are ignored, as RabbitMQ does.
    """
    if b"CC" not in props:  # also in "BCC"
        return (), props
    try:
        decoded = decode_properties(props)
        raw_headers = decoded.get("headers")
        entries = list(table_entries(raw_headers)) if raw_headers else []
    except CodecError:
        return (), props
    keys: list[str] = []
    kept: list[bytes] = []
    stripped = False
    for key, value, raw in entries:
        if key in ("CC", "BCC"):
            if not isinstance(value, list):
                raise AMQPError(
                    PRECONDITION_FAILED,
                    f'invalid message: {{unacceptable_type_in_header,"{key}",{amqp_type_name(value)}}}',
                    (60, 40),
                )
            keys.extend(_text(item) for item in value if isinstance(item, str | bytes))
        if key == "BCC":
            stripped = True
        else:
            kept.append(raw)
    if not stripped:
        return tuple(keys), props
    decoded["headers"] = table_from_entries(kept)
    return tuple(keys), encode_properties(decoded)


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
