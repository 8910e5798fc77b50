"""Exchanges and how each type routes: direct, fanout, topic, headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker_sim.domain.topic_match import pattern, split_words, topic_matches

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")


@dataclass(frozen=True, slots=True)
class Binding:
    """A queue bound to an exchange with a routing key (or pattern) and arguments."""

    queue: str
    routing_key: str
    arguments: tuple[tuple[str, Any], ...] = ()


@dataclass(eq=False)
class Exchange:
    """One exchange and its bindings. ``route`` gives the queue names a message goes to."""

    name: str
    type: str
    durable: bool = False
    auto_delete: bool = False
    internal: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)
    bindings: dict[Binding, None] = field(default_factory=dict)
    # Bindings to other exchanges, kept as a shadow exchange of the same type whose "queues" are the
    # destination exchanges' names: one matcher (and its caches) serves both kinds of binding.
    forward: Exchange | None = None
    _direct: dict[str, list[str]] = field(default_factory=dict)
    _cache: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def bind(self, binding: Binding) -> None:
        """Add a binding (a duplicate is a no-op, as on RabbitMQ)."""
        if binding in self.bindings:
            return
        self.bindings[binding] = None
        self._changed()

    def unbind(self, binding: Binding) -> bool:
        """Remove a binding; False when it was not there."""
        if self.bindings.pop(binding, 0) is None:
            self._changed()
            return True
        return False

    def unbind_queue(self, queue: str) -> bool:
        """Remove every binding of one queue; True when there was any."""
        gone = [b for b in self.bindings if b.queue == queue]
        for binding in gone:
            del self.bindings[binding]
        if gone:
            self._changed()
        return bool(gone)

    def bind_exchange(self, binding: Binding) -> bool:
        """Bind another exchange (``binding.queue`` names it); False when the binding was there."""
        if self.forward is None:
            self.forward = Exchange(self.name, self.type)
        if binding in self.forward.bindings:
            return False
        self.forward.bind(binding)
        return True

    def unbind_exchange(self, binding: Binding) -> bool:
        """Remove a binding to another exchange; False when it was not there."""
        return self.forward is not None and self._forward_removed(self.forward.unbind(binding))

    def unbind_destination_exchange(self, name: str) -> bool:
        """Remove every binding to one exchange (it was deleted); True when there was any."""
        return self.forward is not None and self._forward_removed(self.forward.unbind_queue(name))

    def _forward_removed(self, removed: bool) -> bool:
        if self.forward is not None and not self.forward.bindings:
            self.forward = None
        return removed

    def in_use(self) -> bool:
        """Whether anything (queue or exchange) is bound to this exchange as its source."""
        return bool(self.bindings) or self.forward is not None

    def _changed(self) -> None:
        self._cache.clear()
        self._direct.clear()
        if self.type == "direct":
            for b in self.bindings:
                queues = self._direct.setdefault(b.routing_key, [])
                if b.queue not in queues:
                    queues.append(b.queue)

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> tuple[str, ...]:
        """Names of the queues this exchange sends a message to, each once."""
        kind = self.type
        if kind == "direct":
            return tuple(self._direct.get(routing_key, ()))
        if kind == "fanout":
            return tuple(dict.fromkeys(b.queue for b in self.bindings))
        if kind == "topic":
            cached = self._cache.get(routing_key)
            if cached is None:
                words = split_words(routing_key)
                cached = tuple(
                    dict.fromkeys(
                        b.queue for b in self.bindings if topic_matches(pattern(b.routing_key), words)
                    )
                )
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[routing_key] = cached
            return cached
        return tuple(
            dict.fromkeys(b.queue for b in self.bindings if headers_match(b.arguments, headers or {}))
        )


def _type_class(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str | bytes):
        return "binary"
    return type(value).__name__


def _same(expected: Any, actual: Any) -> bool:
    # Erlang's == as RabbitMQ 3.10 uses it: 1 == 1.0, but '1' is not 1 and true is not 1.
    if _type_class(expected) != _type_class(actual):
        return False
    if isinstance(expected, str) and isinstance(actual, bytes):
        return expected.encode() == actual
    if isinstance(expected, bytes) and isinstance(actual, str):
        return expected == actual.encode()
    return bool(expected == actual)


def headers_match(arguments: tuple[tuple[str, Any], ...], headers: dict[str, Any]) -> bool:
    """RabbitMQ's headers matching: ``x-match`` all / any / all-with-x / any-with-x; void means present."""
    args = dict(arguments)
    mode = args.pop("x-match", "all")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    with_x = mode.endswith("-with-x")
    wanted = {k: v for k, v in args.items() if with_x or not k.startswith("x-")}
    if mode.startswith("any"):
        return any(k in headers and (v is None or _same(v, headers[k])) for k, v in wanted.items())
    return all(k in headers and (v is None or _same(v, headers[k])) for k, v in wanted.items())
