"""What the broker's management API says about one station, for the inspector's "broker" figures.

Blocking HTTP (a few requests, each bounded by :func:`api_request`'s timeout): callers run it in
a thread. Names here are the broker's (prefixed) ones; the caller maps the scenario's names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from broker_sim.broker.management import NotFound, api_request

Kind = Literal["p", "x", "q", "g", "c", "b"]
Json = dict[str, Any]


@dataclass(frozen=True)
class StationQuery:
    """One station in the broker's names: what to ask the API about."""

    kind: Kind
    vhost: str
    queue: str = ""
    """A queue, a group's or a consumer's queue, a binding's destination queue."""
    exchange: str = ""
    """An exchange, a binding's source."""
    destination_exchange: str = ""
    """An exchange-to-exchange binding's destination."""
    channel: int | None = None
    """A consumer's channel number (each consumer has a channel of its own)."""


@dataclass(frozen=True)
class BrokerReading:
    """The API's answers about one station; ``problem`` says why there are none."""

    queue: Json | None = None
    exchange: Json | None = None
    consumers: tuple[Json, ...] = ()
    bindings: tuple[Json, ...] = ()
    channel: Json | None = None
    """A consumer's channel (its message rates), where the API has ``/api/channels``."""
    problem: str = ""


def read_station(url: str, api: str, query: StationQuery) -> BrokerReading:
    """Ask the API at ``api`` (as the broker URL's user) about one station; never raises."""
    try:
        return _read(url, api, query)
    except NotFound as exc:
        return BrokerReading(problem=f"the broker does not know it ({exc})")
    except (OSError, ValueError) as exc:
        return BrokerReading(problem=str(exc))


def _read(url: str, api: str, query: StationQuery) -> BrokerReading:
    vhost = quote(query.vhost, safe="")

    def get(path: str) -> Any:
        return api_request(url, path, api=api)

    def get_list(path: str) -> list[Json]:
        answer = get(path)
        return [item for item in answer if isinstance(item, dict)] if isinstance(answer, list) else []

    kind = query.kind
    if kind == "p" or (kind == "x" and not query.exchange):
        # a producer lives in the client; the default exchange's bindings are every queue's name
        return BrokerReading()
    queue = exchange = channel = None
    consumers: list[Json] = []
    bindings: list[Json] = []
    if kind == "q":
        queue = get(f"queues/{vhost}/{quote(query.queue, safe='')}")
    if kind == "x":
        exchange = get(f"exchanges/{vhost}/{quote(query.exchange, safe='')}")
    if kind in ("q", "g", "c"):
        consumers = [c for c in get_list(f"consumers/{vhost}") if _queue_of(c) == query.queue]
    if kind == "c":
        consumers = [c for c in consumers if _channel(c).get("number") == query.channel]
        if consumers and (name := _channel(consumers[0]).get("name")):
            try:
                channel = get(f"channels/{quote(str(name), safe='')}")
            except NotFound:  # a broker whose API keeps no channels (broker-sim's own)
                channel = None
    if kind in ("q", "x", "b"):
        bindings = [b for b in get_list(f"bindings/{vhost}") if _concerns(b, query)]
    return BrokerReading(
        queue=queue if isinstance(queue, dict) else None,
        exchange=exchange if isinstance(exchange, dict) else None,
        consumers=tuple(consumers),
        bindings=tuple(bindings),
        channel=channel if isinstance(channel, dict) else None,
    )


def _queue_of(consumer: Json) -> object:
    queue = consumer.get("queue")
    return queue.get("name") if isinstance(queue, dict) else None


def _channel(consumer: Json) -> Json:
    details = consumer.get("channel_details")
    return details if isinstance(details, dict) else {}


def _concerns(binding: Json, query: StationQuery) -> bool:
    source, destination = binding.get("source"), binding.get("destination")
    to_queue = binding.get("destination_type") == "queue"
    if query.kind == "q":
        return to_queue and destination == query.queue
    if query.kind == "x":
        return source == query.exchange
    if query.destination_exchange:
        return source == query.exchange and not to_queue and destination == query.destination_exchange
    return source == query.exchange and to_queue and destination == query.queue
