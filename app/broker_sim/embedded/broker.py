"""The broker's state: exchanges, queues and bindings of one vhost, routing, dead-lettering, persistence."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from broker_sim.embedded import store as records
from broker_sim.embedded.codec import (
    Timestamp,
    decode_table,
    encode_entry,
    encode_properties,
    table_entries,
    table_from_entries,
)
from broker_sim.embedded.errors import (
    ACCESS_REFUSED,
    COMMAND_INVALID,
    PRECONDITION_FAILED,
    RESOURCE_LOCKED,
    AMQPError,
    inequivalent,
    not_found,
)
from broker_sim.embedded.exchange import EXCHANGE_TYPES, Binding, Exchange
from broker_sim.embedded.faults import Faults
from broker_sim.embedded.queue import Message, Queue, QueuedMessage
from broker_sim.embedded.quorum import check_queue_type, quorum_delete_refused
from broker_sim.embedded.reply_to import DirectReplyTo
from broker_sim.embedded.routing import (
    ALTERNATE_EXCHANGE,
    amqp_type_name,
    check_alternate_argument,
    needs_graph,
    route_graph,
)
from broker_sim.embedded.store import Store
from broker_sim.embedded.trace import TRACE_EXCHANGE

log = logging.getLogger(__name__)

PREDECLARED = {
    "": "direct",
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
    TRACE_EXCHANGE: "topic",
}
# Arguments RabbitMQ compares when a queue is declared again.
EQUIVALENT_QUEUE_ARGS = (
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-single-active-consumer",
)
DEFAULT_CONSUMER_TIMEOUT_MS = 1_800_000  # 30 minutes, RabbitMQ 3.10's default
OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")
INTEGER_QUEUE_ARGS = ("x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-max-priority")


def server_named_queue() -> str:
    """A name like RabbitMQ's ``amq.gen-…`` for ``queue_declare("")``."""
    return "amq.gen-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


def _locked(name: str, vhost: str) -> AMQPError:
    return AMQPError(
        RESOURCE_LOCKED,
        f"cannot obtain exclusive access to locked queue '{name}' in vhost '{vhost}'. It could be "
        "originally declared on another connection or the exclusive property value does not match "
        "that of the original declaration.",
    )


class Broker:
    """One vhost's exchanges, queues and bindings, and the store that keeps the durable ones."""

    def __init__(
        self,
        users: dict[str, str],
        vhost: str = "/",
        data_dir: Path | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.users = users
        self.vhost = vhost
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        self.store = Store(data_dir, faults) if data_dir is not None else None
        self.replies = DirectReplyTo()
        # RabbitMQ 3.10's consumer_timeout: a delivery unacked longer closes its channel (406).
        self.consumer_timeout_ms = DEFAULT_CONSUMER_TIMEOUT_MS

    # --- lifecycle ------------------------------------------------------------------------------

    def open(self) -> int:
        """Declare the predefined exchanges and recover what the store kept; returns messages recovered."""
        for name, kind in PREDECLARED.items():
            internal = name == TRACE_EXCHANGE
            self.exchanges[name] = Exchange(name, kind, durable=True, internal=internal)
        if self.store is None:
            return 0
        state = self.store.open(self._topology_records)
        for entry in state.exchanges.values():
            self.exchanges[entry["name"]] = Exchange(
                entry["name"],
                entry["type"],
                True,
                bool(entry["auto_delete"]),
                bool(entry["internal"]),
                dict(entry.get("arguments") or {}),
            )
        for entry in state.queues.values():
            self.queues[entry["name"]] = self._new_queue(
                entry["name"], True, None, bool(entry["auto_delete"]), dict(entry.get("arguments") or {})
            )
        for entry in state.bindings.values():
            exchange = self.exchanges.get(entry["exchange"])
            if entry.get("destination_type") == "exchange":
                if exchange is not None and entry["queue"] in self.exchanges:
                    exchange.bind_exchange(
                        Binding(entry["queue"], entry["routing_key"], _frozen(entry.get("arguments") or {}))
                    )
                continue
            if exchange is not None and entry["queue"] in self.queues:
                exchange.bind(
                    Binding(entry["queue"], entry["routing_key"], _frozen(entry.get("arguments") or {}))
                )
        loop = asyncio.get_running_loop()
        now_wall, now = time.time(), loop.time()
        recovered = 0
        for stored in sorted(state.messages.values(), key=lambda m: m.store_id):
            queue = self.queues.get(stored.queue)
            if queue is None:
                continue
            message = Message.published(stored.exchange, stored.routing_key, stored.props, stored.body)
            expires = None if not stored.expires_wall else now + (stored.expires_wall - now_wall)
            queue.messages.append(QueuedMessage(message, stored.store_id, False, expires))
            recovered += 1
        dropped = [i for i, m in state.messages.items() if m.queue not in self.queues]
        self.store.start()
        self.store.remove(dropped)
        for queue in self.queues.values():
            queue.expire()
            queue.touch()
        return recovered

    async def close(self) -> None:
        """Flush and release the store."""
        if self.store is not None:
            await self.store.close()

    def _topology_records(self) -> Iterable[bytes]:
        for exchange in self.exchanges.values():
            if exchange.durable and exchange.name not in PREDECLARED:
                yield Store.topology_record(records.EXCHANGE, _exchange_entry(exchange))
        # An exclusive queue dies with its connection: it must not come back after a restart.
        for queue in self.queues.values():
            if queue.durable and not queue.exclusive:
                yield Store.topology_record(records.QUEUE, _queue_entry(queue))
        for exchange in self.exchanges.values():
            for binding in exchange.bindings:
                bound = self.queues.get(binding.queue)
                if exchange.durable and bound is not None and bound.durable and not bound.exclusive:
                    yield Store.topology_record(records.BIND, _binding_entry(exchange.name, binding))
            for binding in exchange.forward.bindings if exchange.forward is not None else ():
                if self._durable_exchange_binding(exchange.name, binding.queue):
                    yield Store.topology_record(
                        records.BIND, _binding_entry(exchange.name, binding, to_exchange=True)
                    )

    # --- exchanges ------------------------------------------------------------------------------

    def declare_exchange(
        self,
        name: str,
        kind: str,
        *,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: dict[str, Any],
    ) -> Exchange:
        """Exchange.Declare with RabbitMQ's checks (403 for ``amq.*``, 404 passive, 406 inequivalent)."""
        if name == "":  # even a passive declare, as on RabbitMQ
            raise AMQPError(ACCESS_REFUSED, "operation not permitted on the default exchange")
        existing = self.exchanges.get(name)
        if passive:
            if existing is None:
                raise not_found("exchange", name, self.vhost)
            return existing
        if kind not in EXCHANGE_TYPES:
            raise AMQPError(COMMAND_INVALID, f"unknown exchange type '{kind}'")
        check_alternate_argument(name, self.vhost, arguments)
        if existing is None:
            if name.startswith("amq."):
                raise AMQPError(ACCESS_REFUSED, f"exchange name '{name}' contains reserved prefix 'amq.*'")
            exchange = Exchange(name, kind, durable, auto_delete, internal, arguments)
            self.exchanges[name] = exchange
            if durable and self.store is not None:
                self.store.log_topology(records.EXCHANGE, _exchange_entry(exchange))
            return exchange
        for arg, received, current in (
            ("type", kind, existing.type),
            ("durable", durable, existing.durable),
            ("auto_delete", auto_delete, existing.auto_delete),
            ("internal", internal, existing.internal),
            # RabbitMQ compares this one argument of an exchange.
            (
                ALTERNATE_EXCHANGE,
                arguments.get(ALTERNATE_EXCHANGE),
                existing.arguments.get(ALTERNATE_EXCHANGE),
            ),
        ):
            if received != current:
                raise inequivalent(arg, "exchange", name, self.vhost, received, current)
        return existing

    def delete_exchange(self, name: str, if_unused: bool) -> None:
        """Exchange.Delete; deleting one that is not there is fine (as on RabbitMQ)."""
        if name == "" or name.startswith("amq."):
            raise AMQPError(
                ACCESS_REFUSED,
                "operation not permitted on the default exchange"
                if name == ""
                else f"exchange name '{name}' contains reserved prefix 'amq.*'",
            )
        exchange = self.exchanges.get(name)
        if exchange is None:
            return
        if if_unused and exchange.in_use():
            raise AMQPError(PRECONDITION_FAILED, f"exchange '{name}' in vhost '{self.vhost}' in use")
        del self.exchanges[name]
        if exchange.durable and self.store is not None:
            self.store.log_topology(records.EXCHANGE_DELETE, {"name": name})
        self._exchange_gone(name)

    def exchange_for_publish(self, name: str) -> Exchange:
        """The exchange a Basic.Publish names, or the channel error RabbitMQ gives."""
        exchange = self.exchanges.get(name)
        if exchange is None:
            raise not_found("exchange", name, self.vhost)
        if exchange.internal:
            raise AMQPError(
                ACCESS_REFUSED, f"cannot publish to internal exchange '{name}' in vhost '{self.vhost}'"
            )
        return exchange

    # --- queues ---------------------------------------------------------------------------------

    def _new_queue(
        self, name: str, durable: bool, owner: object | None, auto_delete: bool, arguments: dict[str, Any]
    ) -> Queue:
        return Queue(
            name,
            self.vhost,
            durable,
            owner,
            auto_delete,
            arguments,
            on_dead=self.dead_letter,
            on_drop=self.drop,
            on_unused=self.remove_queue,
        )

    def queue(self, name: str, owner: object) -> Queue:
        """An existing queue this connection may use (404 when missing, 405 when another's exclusive)."""
        queue = self.queues.get(name)
        if queue is None:
            raise not_found("queue", name, self.vhost)
        if queue.exclusive_owner is not None and queue.exclusive_owner is not owner:
            raise _locked(name, self.vhost)
        return queue

    def declare_queue(
        self,
        name: str,
        owner: object,
        *,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: dict[str, Any],
    ) -> Queue:
        """Queue.Declare with RabbitMQ's checks; ``name`` empty means a server-named queue."""
        if passive:
            return self.queue(name, owner)
        if not name:
            name = server_named_queue()
        elif name.startswith("amq."):
            raise AMQPError(ACCESS_REFUSED, f"queue name '{name}' contains reserved prefix 'amq.*'")
        existing = self.queues.get(name)
        if existing is not None:
            if existing.exclusive_owner is not owner and (existing.exclusive or exclusive):
                raise _locked(name, self.vhost)
            if exclusive != existing.exclusive:
                raise _locked(name, self.vhost)
            for arg, received, current in (
                ("durable", durable, existing.durable),
                ("auto_delete", auto_delete, existing.auto_delete),
            ):
                if received != current:
                    raise inequivalent(arg, "queue", name, self.vhost, received, current)
            for arg in EQUIVALENT_QUEUE_ARGS:
                if arguments.get(arg) != existing.arguments.get(arg):
                    raise inequivalent(
                        arg, "queue", name, self.vhost, arguments.get(arg), existing.arguments.get(arg)
                    )
            return existing
        self._check_queue_args(name, arguments)
        check_queue_type(
            name,
            self.vhost,
            durable=durable,
            exclusive=exclusive,
            auto_delete=auto_delete,
            arguments=arguments,
        )
        queue = self._new_queue(name, durable, owner if exclusive else None, auto_delete, arguments)
        self.queues[name] = queue
        if durable and not exclusive and self.store is not None:
            self.store.log_topology(records.QUEUE, _queue_entry(queue))
        return queue

    def _check_queue_args(self, name: str, arguments: dict[str, Any]) -> None:
        where = f"for queue '{name}' in vhost '{self.vhost}'"
        for arg in INTEGER_QUEUE_ARGS:
            value = arguments.get(arg)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise AMQPError(
                    PRECONDITION_FAILED, f"invalid arg '{arg}' {where}: {{unacceptable_type,longstr}}"
                )
            if value < 0 or (arg == "x-expires" and value == 0):
                raise AMQPError(
                    PRECONDITION_FAILED, f"invalid arg '{arg}' {where}: {{value_negative,{value}}}"
                )
        max_priority = arguments.get("x-max-priority")
        if isinstance(max_priority, int) and max_priority > 255:
            raise AMQPError(
                PRECONDITION_FAILED,
                f"invalid arg 'x-max-priority' {where}: {{max_value_exceeded,{max_priority}}}",
            )
        single = arguments.get("x-single-active-consumer")
        if single is not None and not isinstance(single, bool):
            raise AMQPError(
                PRECONDITION_FAILED,
                f"invalid arg 'x-single-active-consumer' {where}: "
                f"{{unacceptable_type,{amqp_type_name(single)}}}",
            )
        overflow = arguments.get("x-overflow")
        if overflow is not None and not isinstance(overflow, str):
            raise AMQPError(
                PRECONDITION_FAILED,
                f"invalid arg 'x-overflow' {where}: {{unacceptable_type,{amqp_type_name(overflow)}}}",
            )
        if overflow is not None and overflow not in OVERFLOW_MODES:
            raise AMQPError(PRECONDITION_FAILED, f"invalid arg 'x-overflow' {where}: invalid_overflow")
        if "x-dead-letter-routing-key" in arguments and "x-dead-letter-exchange" not in arguments:
            raise AMQPError(
                PRECONDITION_FAILED,
                f"invalid arg 'x-dead-letter-routing-key' {where}: {{routing_key_but_no_dlx_defined}}",
            )

    def delete_queue(self, name: str, owner: object, *, if_unused: bool, if_empty: bool) -> int:
        """Queue.Delete: consumers get Basic.Cancel; returns the count of ready messages dropped."""
        queue = self.queues.get(name)
        if queue is None:
            return 0
        if queue.exclusive_owner is not None and queue.exclusive_owner is not owner:
            raise _locked(name, self.vhost)
        if queue.quorum and (if_empty or if_unused):
            raise quorum_delete_refused(name, self.vhost, "if-empty" if if_empty else "if-unused")
        if if_unused and queue.consumers:
            raise AMQPError(PRECONDITION_FAILED, f"queue '{name}' in vhost '{self.vhost}' in use")
        if if_empty and queue.messages:
            raise AMQPError(PRECONDITION_FAILED, f"queue '{name}' in vhost '{self.vhost}' is not empty")
        return self.remove_queue(queue)

    def remove_queue(self, queue: Queue) -> int:
        """Delete a queue now (delete, exclusive owner gone, auto-delete)."""
        if self.queues.get(queue.name) is not queue:
            return 0
        del self.queues[queue.name]
        for consumer in list(queue.consumers):
            consumer.channel.cancel_from_broker(consumer)
        queue.consumers.clear()
        count = queue.purge()
        queue.close()
        queue.deleted = True
        for exchange in list(self.exchanges.values()):
            if exchange.unbind_queue(queue.name):
                self._maybe_auto_delete(exchange)
        if queue.durable and not queue.exclusive and self.store is not None:
            self.store.log_topology(records.QUEUE_DELETE, {"name": queue.name})
        return count

    def consumer_gone(self, queue: Queue) -> None:
        """A consumer was cancelled: an auto-delete queue goes with its last consumer."""
        if queue.auto_delete and queue.ever_consumed and not queue.consumers:
            self.remove_queue(queue)

    # --- bindings -------------------------------------------------------------------------------

    def _binding_ends(
        self, exchange_name: str, queue_name: str, routing_key: str, arguments: dict[str, Any], owner: object
    ) -> tuple[Exchange, Queue, Binding]:
        """The exchange, queue and binding a Bind/Unbind names (403 default exchange, 404 missing end)."""
        if exchange_name == "":
            raise AMQPError(ACCESS_REFUSED, "operation not permitted on the default exchange")
        queue = self.queue(queue_name, owner)
        exchange = self.exchanges.get(exchange_name)
        if exchange is None:
            raise not_found("exchange", exchange_name, self.vhost)
        return exchange, queue, Binding(queue.name, routing_key, _frozen(arguments))

    def bind(
        self, exchange_name: str, queue_name: str, routing_key: str, arguments: dict[str, Any], owner: object
    ) -> None:
        """Queue.Bind (403 on the default exchange, 404 when either end is missing)."""
        exchange, queue, binding = self._binding_ends(
            exchange_name, queue_name, routing_key, arguments, owner
        )
        if binding in exchange.bindings:
            return
        exchange.bind(binding)
        if exchange.durable and queue.durable and not queue.exclusive and self.store is not None:
            self.store.log_topology(records.BIND, _binding_entry(exchange.name, binding))

    def unbind(
        self, exchange_name: str, queue_name: str, routing_key: str, arguments: dict[str, Any], owner: object
    ) -> None:
        """Queue.Unbind; a binding, queue or exchange that is not there is fine (RabbitMQ answers
        Unbind-Ok: the binding is gone either way, and clients rely on it)."""
        if exchange_name == "":
            raise AMQPError(ACCESS_REFUSED, "operation not permitted on the default exchange")
        if queue_name not in self.queues or exchange_name not in self.exchanges:
            return
        exchange, queue, binding = self._binding_ends(
            exchange_name, queue_name, routing_key, arguments, owner
        )
        if exchange.unbind(binding):
            if exchange.durable and queue.durable and not queue.exclusive and self.store is not None:
                self.store.log_topology(records.UNBIND, _binding_entry(exchange.name, binding))
            self._maybe_auto_delete(exchange)

    def _maybe_auto_delete(self, exchange: Exchange) -> None:
        if exchange.auto_delete and not exchange.in_use() and self.exchanges.get(exchange.name) is exchange:
            del self.exchanges[exchange.name]
            if exchange.durable and self.store is not None:
                self.store.log_topology(records.EXCHANGE_DELETE, {"name": exchange.name})
            self._exchange_gone(exchange.name)

    # --- exchange-to-exchange bindings ------------------------------------------------------------

    def _exchange_ends(self, destination: str, source: str) -> tuple[Exchange, Exchange]:
        """Source and destination of Exchange.Bind (403 for the default exchange, 404 when missing)."""
        if destination == "" or source == "":
            raise AMQPError(ACCESS_REFUSED, "operation not permitted on the default exchange")
        found = self.exchanges.get(source)
        if found is None:
            raise not_found("exchange", source, self.vhost)
        target = self.exchanges.get(destination)
        if target is None:
            raise not_found("exchange", destination, self.vhost)
        return found, target

    def bind_exchange(
        self, destination: str, source: str, routing_key: str, arguments: dict[str, Any]
    ) -> None:
        """Exchange.Bind: messages ``source`` routes with this key go on to ``destination``."""
        found, _ = self._exchange_ends(destination, source)
        binding = Binding(destination, routing_key, _frozen(arguments))
        if found.bind_exchange(binding) and self._durable_exchange_binding(source, destination):
            assert self.store is not None
            self.store.log_topology(records.BIND, _binding_entry(source, binding, to_exchange=True))

    def unbind_exchange(
        self, destination: str, source: str, routing_key: str, arguments: dict[str, Any]
    ) -> None:
        """Exchange.Unbind; as on RabbitMQ, a binding or exchange that is not there is fine."""
        if "" in (destination, source):
            raise AMQPError(ACCESS_REFUSED, "operation not permitted on the default exchange")
        found = self.exchanges.get(source)
        if found is None:
            return
        binding = Binding(destination, routing_key, _frozen(arguments))
        if found.unbind_exchange(binding):
            if self._durable_exchange_binding(source, destination):
                assert self.store is not None
                self.store.log_topology(records.UNBIND, _binding_entry(source, binding, to_exchange=True))
            self._maybe_auto_delete(found)

    def _durable_exchange_binding(self, source: str, destination: str) -> bool:
        ends = (self.exchanges.get(source), self.exchanges.get(destination))
        return self.store is not None and all(e is not None and e.durable for e in ends)

    def _exchange_gone(self, name: str) -> None:
        # Bindings to a deleted exchange go with it (their store records with the exchange's).
        for exchange in list(self.exchanges.values()):
            if exchange.unbind_destination_exchange(name):
                self._maybe_auto_delete(exchange)

    # --- messages -------------------------------------------------------------------------------

    def route(self, exchange: Exchange, message: Message) -> list[Queue]:
        """The queues a message goes to (the default exchange routes by queue name)."""
        queues = self.queues
        if exchange.name == "":
            if message.cc:
                found = [queues.get(n) or self.replies.queue(n) for n in (message.routing_key, *message.cc)]
                return list({id(q): q for q in found if q is not None}.values())
            queue = queues.get(message.routing_key) or self.replies.queue(message.routing_key)
            return [] if queue is None else [queue]
        if message.cc or needs_graph(exchange):
            keys = (message.routing_key, *message.cc)
            # Any exchange down the chain may be a headers exchange.
            routed = route_graph(self.exchanges, exchange, keys, message.headers())
            return [queues[name] for name in routed if name in queues]
        headers = message.headers() if exchange.type == "headers" else None
        return [queues[name] for name in exchange.route(message.routing_key, headers) if name in queues]

    def enqueue(self, queue: Queue, message: Message, now: float) -> bool:
        """Put a message in a queue; True when it was written to the store (a confirm must wait)."""
        store_id = 0
        expires = (
            queue.expiry_for(message, now) if queue.arguments or message.expiration_ms is not None else None
        )
        if message.persistent and queue.durable and self.store is not None and not queue.exclusive:
            wall = 0.0 if expires is None else time.time() + (expires - now)
            store_id = self.store.add_message(
                queue.name, message.wire_address(), message.props, message.body, wall
            )
        queue.put(QueuedMessage(message, store_id, False, expires))
        return store_id != 0

    def drop(self, entry: QueuedMessage) -> None:
        """A message leaves the broker (acked, purged, dropped): forget it in the store."""
        if entry.store_id and self.store is not None:
            self.store.remove((entry.store_id,))

    def dead_letter(self, queue: Queue, entry: QueuedMessage, reason: str) -> None:
        """Drop a message from ``queue``; with ``x-dead-letter-exchange``, republish it with ``x-death``.

        The new copy is written before the old one is removed: a crash between the two records leaves
        two copies (at least once), never none."""
        target = queue.arguments.get("x-dead-letter-exchange")
        exchange = self.exchanges.get(target) if isinstance(target, str) else None
        if exchange is not None:
            self._republish_dead(exchange, queue, entry, reason)
        self.drop(entry)

    def _republish_dead(self, exchange: Exchange, queue: Queue, entry: QueuedMessage, reason: str) -> None:
        original = entry.message
        routing_key = queue.arguments.get("x-dead-letter-routing-key")
        routing_key = routing_key if isinstance(routing_key, str) else original.routing_key
        props, cycle_queues = _dead_lettered_props(original, queue.name, reason)
        message = Message.published(exchange.name, routing_key, props, original.body)
        message.exchange, message.routing_key = exchange.name, routing_key
        now = asyncio.get_running_loop().time()
        for destination in self.route(exchange, message):
            if reason != "rejected" and destination.name in cycle_queues:
                continue  # RabbitMQ drops a message that would cycle with no rejection in the loop
            self.enqueue(destination, message, now)


def _dead_lettered_props(message: Message, queue: str, reason: str) -> tuple[bytes, set[str]]:
    """New properties with ``x-death`` updated as RabbitMQ 3.10 does it, and the queues of a cycle."""
    props = dict(message.properties())
    raw_headers = props.get("headers")
    kept: list[bytes] = []
    deaths: list[dict[str, Any]] = []
    present: set[str] = set()
    if raw_headers:
        for key, value, raw in table_entries(raw_headers):
            present.add(key)
            if key == "x-death" and isinstance(value, list):
                deaths = [d for d in value if isinstance(d, dict)]
            else:
                kept.append(raw)
    cycle = set()
    if not any(d.get("reason") == "rejected" for d in deaths):
        cycle = {str(d.get("queue")) for d in deaths}
    expiration = props.pop("expiration", None)
    for index, death in enumerate(deaths):
        if death.get("queue") == queue and death.get("reason") == reason:
            death = dict(death)
            death["count"] = int(death.get("count", 0)) + 1
            death["time"] = Timestamp(int(time.time()))
            deaths = [death, *deaths[:index], *deaths[index + 1 :]]
            break
    else:
        death = {
            "count": 1,
            "reason": reason,
            "queue": queue,
            "time": Timestamp(int(time.time())),
            "exchange": message.exchange,
            "routing-keys": [message.routing_key],
        }
        if expiration is not None:
            death["original-expiration"] = expiration
        deaths = [death, *deaths]
    entries = [*kept, encode_entry("x-death", deaths)]
    for key, value in (
        ("x-first-death-exchange", message.exchange),
        ("x-first-death-queue", queue),
        ("x-first-death-reason", reason),
    ):
        if key not in present:
            entries.append(encode_entry(key, value))
    props["headers"] = table_from_entries(entries)
    return encode_properties(props), cycle


def _frozen(arguments: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, _hashable(v)) for k, v in arguments.items()))


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return _frozen(value)
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _thawed(arguments: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in arguments}


def _exchange_entry(exchange: Exchange) -> dict[str, Any]:
    return {
        "name": exchange.name,
        "type": exchange.type,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": exchange.arguments,
    }


def _queue_entry(queue: Queue) -> dict[str, Any]:
    return {"name": queue.name, "auto_delete": queue.auto_delete, "arguments": queue.arguments}


def _binding_entry(exchange: str, binding: Binding, *, to_exchange: bool = False) -> dict[str, Any]:
    entry = {
        "exchange": exchange,
        "queue": binding.queue,
        "routing_key": binding.routing_key,
        "arguments": _thawed(binding.arguments),
    }
    if to_exchange:
        entry["destination_type"] = "exchange"
    return entry


__all__ = ["Broker", "decode_table"]
