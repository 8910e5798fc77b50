"""Reading scenario files (TOML) into :class:`Scenario`, refusing bad ones in one clear line.

Every error names the file, the key path (``consumers[2].prefetch``), the line where it can be
told, and what to do about it.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from broker_sim.domain.scenario import (
    CONFIRM_MODES,
    DEFAULT_EXCHANGE,
    DIRECT_REPLY_TO,
    MAX_PRIORITY,
    OVERFLOWS,
    BindingSpec,
    ConsumerGroupSpec,
    ExchangeSpec,
    HeaderValue,
    ProducerSpec,
    QueueSpec,
    RejectSpec,
    Scenario,
    WorkSpec,
)
from broker_sim.domain.timeline import (
    ACTIONS,
    CONSUMER_METRICS,
    METRICS,
    PRODUCER_METRICS,
    QUEUE_METRICS,
    RUN_METRICS,
    STEP_FIELDS,
    STEP_REQUIRED,
    Expectation,
    Step,
)
from broker_sim.domain.topic import validate_pattern

T = TypeVar("T")

CHANNEL_MAX = 2047
"""Channels RabbitMQ allows on one connection by default (``channel_max``)."""
MAX_GROUP_CONSUMERS = 200
"""Most consumers one group may have. Each consumer is a channel of its own on the engine's one
connection, and RabbitMQ allows 2047 channels per connection by default (``channel_max``): a
group of 100,000 used to pass here and fail at the broker. 200 is far more than a screen shows."""
MAX_CONSUMERS = 1000
"""Most consumers of all groups at once: half of ``channel_max`` 2047, leaving the other half
for producers (a channel each) and the engine's own channels."""
MAX_PREFETCH = 65535
"""``basic.qos`` carries prefetch_count as a 16-bit number; aio-pika refuses anything larger."""
MAX_RATE = 10_000.0
"""Messages per second one producer may ask for: about 3x what the engine reaches on these
machines (3,500 msg/s), so a rate can be "as fast as it goes" without being a typo's 1e9."""
MAX_BURST = 100_000
"""Most messages in one burst step: half a minute of the engine's throughput here."""
MAX_WINDOW = 10_000
"""Most publishes a producer may leave unconfirmed at once: RabbitMQ holds each one for it."""


def unsafe_name(name: str) -> str | None:
    """Why a name that becomes part of a file path is unsafe, or ``None`` when it is fine.

    Scenario names name the folder of their consumers' logs and their recordings, and consumer
    group names name log files: ``..``, a slash or a NUL would reach outside those folders.
    Dots inside a name (``shop.orders``, a normal AMQP handle) are fine.
    """
    if not name:
        return "needs a name"
    if ".." in name or name == ".":
        return f"{name!r} holds '..', which would climb out of a folder; use single dots ('shop.orders')"
    if "/" in name or "\\" in name or "\0" in name:
        return (
            f"{name!r} holds '/', '\\' or NUL, and a name becomes part of a file path; "
            "use letters, digits, '.', '-' or '_'"
        )
    return None


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with where and why."""

    def __init__(self, path: str, key: str, line: int | None, reason: str) -> None:
        self.path, self.key, self.line, self.reason = path, key, line, reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key + ': ' if key else ''}{reason}")


class _Reader:
    """Walks the parsed TOML, knowing the source text so errors can name a line."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key: str) -> int | None:
        """Best guess at the line of a key path like ``consumers[2].prefetch``."""
        parts = re.findall(r"(\w[\w-]*)(?:\[(\d+)\])?", key)
        start = 0
        if parts and parts[0][1]:
            table, index = parts[0][0], int(parts[0][1])
            headers = [i for i, ln in enumerate(self.lines) if ln.strip() == f"[[{table}]]"]
            if index < len(headers):
                start = headers[index]
                end = headers[index + 1] if index + 1 < len(headers) else len(self.lines)
                leaf = parts[-1][0] if len(parts) > 1 else None
                if leaf is None:
                    return start + 1
                for i in range(start, end):
                    if re.match(rf"\s*{re.escape(leaf)}\s*=", self.lines[i]):
                        return i + 1
                return start + 1
        leaf = parts[-1][0] if parts else ""
        for i, ln in enumerate(self.lines):
            if leaf and re.match(rf"\s*(\[\[?)?{re.escape(leaf)}(\]\]?|\s*=)", ln):
                return i + 1
        return None

    def fail(self, key: str, reason: str) -> ScenarioError:
        return ScenarioError(self.path, key, self.line_of(key), reason)

    def table(self, data: Any, key: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(key, f"expected a table, got {_kind(data)}")
        for k in data:
            if k not in allowed:
                hint = ", ".join(sorted(allowed))
                raise self.fail(f"{key}.{k}" if key else k, f"unknown key (known keys: {hint})")
        for k in sorted(required):
            if k not in data:
                raise self.fail(key or k, f"missing required key '{k}'")
        return cast(dict[str, Any], data)

    def get(self, data: Mapping[str, Any], key: str, name: str, kind: type[T], default: T) -> T:
        if name not in data:
            return default
        value = data[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.fail(
                f"{key}.{name}" if key else name,
                f"expected {_KIND_WORDS[kind]}, got {_kind(value)} {value!r}",
            )
        return cast(T, value)

    def choice(
        self, data: Mapping[str, Any], key: str, name: str, options: tuple[str, ...], default: str
    ) -> str:
        value = self.get(data, key, name, str, default)
        if value not in options:
            raise self.fail(f"{key}.{name}", f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def strings(
        self, data: Mapping[str, Any], key: str, name: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = data.get(name, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{key}.{name}", f"expected a list of strings, got {value!r}")
        return tuple(value)

    def headers(self, value: Any, key: str) -> dict[str, HeaderValue]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table of header values, got {_kind(value)}")
        for k, v in value.items():
            if not isinstance(v, str | int | float | bool):
                raise self.fail(
                    f"{key}.{k}", f"header values are strings, numbers or booleans, got {_kind(v)}"
                )
        return cast(dict[str, HeaderValue], value)

    def items(self, doc: Mapping[str, Any], name: str) -> list[tuple[str, Any]]:
        value = doc.get(name, [])
        if not isinstance(value, list):
            raise self.fail(name, f"expected [[{name}]] tables, got {_kind(value)}")
        return [(f"{name}[{i}]", v) for i, v in enumerate(value)]


_KIND_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
}


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _positive(r: _Reader, key: str, value: float, allow_zero: bool = True) -> None:
    if not math.isfinite(value):  # TOML has inf and nan
        raise r.fail(key, f"must be a finite number, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise r.fail(key, f"must be {bound}, got {value}")


def _at_most(r: _Reader, key: str, value: float, most: float, what: str) -> None:
    if value > most:
        raise r.fail(key, f"at most {most:,g} {what}, got {value:,g}")


def _consumer_count(r: _Reader, key: str, count: int) -> None:
    if count > MAX_GROUP_CONSUMERS:
        raise r.fail(
            key,
            f"at most {MAX_GROUP_CONSUMERS} consumers in a group (each is a channel of its own, and "
            f"a connection has at most {CHANNEL_MAX}), got {count}",
        )


def _prefetch(r: _Reader, key: str, prefetch: int) -> None:
    if prefetch > MAX_PREFETCH:
        raise r.fail(key, f"at most {MAX_PREFETCH} (0 means unlimited), got {prefetch}")


def _exchange(r: _Reader, key: str, data: Any) -> ExchangeSpec:
    t = r.table(data, key, {"name", "type", "durable", "auto_delete", "alternate_exchange"}, {"name", "type"})
    name = r.get(t, key, "name", str, "")
    if not name or name.startswith("amq."):
        raise r.fail(f"{key}.name", "needs a name of its own (not empty, not amq.*)")
    kind = r.choice(t, key, "type", ("direct", "fanout", "topic", "headers"), "direct")
    return ExchangeSpec(
        name=name,
        type=kind,  # type: ignore[arg-type]
        durable=r.get(t, key, "durable", bool, False),
        auto_delete=r.get(t, key, "auto_delete", bool, False),
        alternate_exchange=r.get(t, key, "alternate_exchange", str, ""),
    )


def _known_exchange(r: _Reader, key: str, name: str, exchanges: set[str], *, default_ok: bool) -> None:
    """Refuse a reference to an exchange the scenario does not declare."""
    if name in exchanges or (default_ok and name == DEFAULT_EXCHANGE):
        return
    known = ", ".join(sorted(repr(n) for n in exchanges)) or "none"
    default = " or '' (the default exchange)" if default_ok else ""
    raise r.fail(key, f"no exchange named {name!r} in this scenario (known: {known}{default})")


def _priority(r: _Reader, key: str, value: int, least: int) -> None:
    if not least <= value <= MAX_PRIORITY:
        raise r.fail(
            key, f"must be from {least} to {MAX_PRIORITY} (1-10 is what RabbitMQ advises), got {value}"
        )


def _queue(r: _Reader, key: str, data: Any, exchanges: set[str]) -> QueueSpec:
    allowed = {
        "name",
        "durable",
        "exclusive",
        "auto_delete",
        "server_named",
        "max_length",
        "message_ttl_ms",
        "dead_letter_exchange",
        "dead_letter_routing_key",
        "overflow",
        "max_priority",
    }
    t = r.table(data, key, allowed, {"name"})
    name = r.get(t, key, "name", str, "")
    if not name:
        raise r.fail(
            f"{key}.name",
            "a queue needs a name (server-named queues too: it is the scenario's handle)",
        )
    max_length = r.get(t, key, "max_length", int, -1)
    ttl = r.get(t, key, "message_ttl_ms", int, -1)
    if "max_length" in t:
        _positive(r, f"{key}.max_length", max_length)
    if "message_ttl_ms" in t:
        _positive(r, f"{key}.message_ttl_ms", ttl)
    dlx = r.get(t, key, "dead_letter_exchange", str, "")
    if "dead_letter_exchange" in t:
        _known_exchange(r, f"{key}.dead_letter_exchange", dlx, exchanges, default_ok=True)
    if "dead_letter_routing_key" in t and "dead_letter_exchange" not in t:
        raise r.fail(f"{key}.dead_letter_routing_key", "needs dead_letter_exchange too (where to send it)")
    overflow = r.choice(t, key, "overflow", OVERFLOWS, "drop-head") if "overflow" in t else None
    max_priority = r.get(t, key, "max_priority", int, 0)
    if "max_priority" in t:
        _priority(r, f"{key}.max_priority", max_priority, 1)
    return QueueSpec(
        name=name,
        durable=r.get(t, key, "durable", bool, False),
        exclusive=r.get(t, key, "exclusive", bool, False),
        auto_delete=r.get(t, key, "auto_delete", bool, False),
        server_named=r.get(t, key, "server_named", bool, False),
        max_length=max_length if max_length >= 0 else None,
        message_ttl_ms=ttl if ttl >= 0 else None,
        dead_letter_exchange=dlx if "dead_letter_exchange" in t else None,
        dead_letter_routing_key=r.get(t, key, "dead_letter_routing_key", str, "")
        if "dead_letter_routing_key" in t
        else None,
        overflow=overflow,  # type: ignore[arg-type]
        max_priority=max_priority or None,
    )


def _bindings(r: _Reader, key: str, data: Any, types: dict[str, str]) -> list[BindingSpec]:
    allowed = {"exchange", "queue", "to_exchange", "keys", "headers", "match"}
    t = r.table(data, key, allowed, {"exchange"})
    exchange = r.get(t, key, "exchange", str, "")
    queue = r.get(t, key, "queue", str, "")
    to_exchange = r.get(t, key, "to_exchange", str, "")
    if exchange not in types:
        raise r.fail(f"{key}.exchange", f"no exchange named {exchange!r} in this scenario")
    if ("queue" in t) == ("to_exchange" in t):
        raise r.fail(key, "give the destination: queue = … or to_exchange = … (one of them)")
    if "to_exchange" in t:
        if not exchange or to_exchange not in types or not to_exchange:
            raise r.fail(
                f"{key}.to_exchange" if exchange else f"{key}.exchange",
                "an exchange-to-exchange binding joins two exchanges of this scenario "
                f"(not the default exchange), got {exchange!r} → {to_exchange!r}",
            )
    elif queue not in types["\0queues"]:
        raise r.fail(f"{key}.queue", f"no queue named {queue!r} in this scenario")
    kind = types[exchange]
    if kind == "headers":
        if "keys" in t:
            raise r.fail(f"{key}.keys", "a headers exchange ignores routing keys: use headers = {...}")
        headers = r.headers(t.get("headers", {}), f"{key}.headers")
        match = r.choice(t, key, "match", ("all", "any"), "all")
        return [BindingSpec(exchange, queue, "", headers, match, to_exchange)]  # type: ignore[arg-type]
    if "headers" in t or "match" in t:
        raise r.fail(f"{key}.headers", f"header rules need a headers exchange, {exchange!r} is {kind}")
    keys = r.strings(t, key, "keys", ("",))
    if kind == "topic":
        for k in keys:
            problem = validate_pattern(k)
            if problem:
                raise r.fail(f"{key}.keys", f"pattern {k!r}: {problem}")
    return [BindingSpec(exchange, queue, k, to_exchange=to_exchange) for k in keys]


def _producer(r: _Reader, key: str, data: Any, types: dict[str, str]) -> ProducerSpec:
    allowed = {
        "name",
        "exchange",
        "rate",
        "routing_keys",
        "headers",
        "pick",
        "persistent",
        "mandatory",
        "body",
        "count",
        "priority",
        "expiration_ms",
        "reply_queue",
        "confirm",
        "window",
    }
    t = r.table(data, key, allowed, {"name", "exchange"})
    exchange = r.get(t, key, "exchange", str, "")
    if exchange not in types:
        raise r.fail(
            f"{key}.exchange",
            f"no exchange named {exchange!r} in this scenario ('' is the default exchange)",
        )
    rate = r.get(t, key, "rate", float, 2.0)
    _positive(r, f"{key}.rate", rate)
    _at_most(r, f"{key}.rate", rate, MAX_RATE, "messages per second")
    count = r.get(t, key, "count", int, -1)
    if "count" in t:
        _positive(r, f"{key}.count", count)
    headers_raw = t.get("headers", [])
    if not isinstance(headers_raw, list):
        raise r.fail(f"{key}.headers", "expected a list of header tables")
    headers = tuple(r.headers(h, f"{key}.headers[{i}]") for i, h in enumerate(headers_raw))
    priorities = _priorities(r, f"{key}.priority", t.get("priority", []))
    expiration = r.get(t, key, "expiration_ms", int, -1)
    if "expiration_ms" in t:
        _positive(r, f"{key}.expiration_ms", expiration)
    reply_queue = r.get(t, key, "reply_queue", str, "")
    if "reply_queue" in t and reply_queue not in types["\0queues"] and reply_queue != DIRECT_REPLY_TO:
        raise r.fail(
            f"{key}.reply_queue",
            f"no queue named {reply_queue!r} in this scenario "
            f"(or {DIRECT_REPLY_TO!r}: direct reply-to, with no reply queue)",
        )
    if reply_queue and exchange != DEFAULT_EXCHANGE:
        raise r.fail(
            f"{key}.reply_queue",
            "requests go to the default exchange (exchange = ''), as in the RPC tutorial",
        )
    return ProducerSpec(
        name=r.get(t, key, "name", str, ""),
        exchange=exchange,
        rate=rate,
        routing_keys=r.strings(t, key, "routing_keys", ("",)) or ("",),
        headers=headers,
        pick=r.choice(t, key, "pick", ("cycle", "random"), "cycle"),  # type: ignore[arg-type]
        persistent=r.get(t, key, "persistent", bool, False),
        mandatory=r.get(t, key, "mandatory", bool, True),
        body=r.choice(t, key, "body", ("image-job", "log-line", "text"), "text"),  # type: ignore[arg-type]
        count=count if count >= 0 else None,
        priority=priorities,
        expiration_ms=expiration if expiration >= 0 else None,
        reply_queue=reply_queue,
        **_confirms(r, key, t),
    )


def _priorities(r: _Reader, key: str, value: Any) -> tuple[int, ...]:
    """A producer's ``priority``: one number, or a list picked from like the routing keys."""
    values = value if isinstance(value, list) else [value]
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool):
            raise r.fail(key, f"expected an integer or a list of integers (e.g. [1, 1, 9]), got {value!r}")
        _priority(r, key, v, 0)
    return tuple(values)


def _confirms(r: _Reader, key: str, t: Mapping[str, Any]) -> dict[str, Any]:
    """A producer's ``confirm`` mode and ``window``, refusing a window the mode does not use."""
    confirm = r.choice(t, key, "confirm", CONFIRM_MODES, "window") if "confirm" in t else None
    window = r.get(t, key, "window", int, 0)
    if "window" in t:
        if confirm not in ("window", "async"):
            raise r.fail(
                f"{key}.window",
                "a window is for confirm = 'window' or 'async' "
                f"({'one at a time has none' if confirm else 'add confirm = …'})",
            )
        if not 1 <= window <= MAX_WINDOW:
            raise r.fail(
                f"{key}.window", f"must be from 1 to {MAX_WINDOW:,} unconfirmed messages, got {window}"
            )
    return {"confirm": confirm, "window": window or None}


def _reject(r: _Reader, key: str, data: Any, exchanges: set[str], ack: str) -> RejectSpec:
    allowed = {"share", "flaky", "requeue", "tries", "park_exchange", "park_key"}
    t = r.table(data, key, allowed, set())
    share = r.get(t, key, "share", float, 0.0)
    flaky = r.get(t, key, "flaky", float, 0.0)
    for name, value in (("share", share), ("flaky", flaky)):
        _positive(r, f"{key}.{name}", value)
        _at_most(r, f"{key}.{name}", value, 1, "(a share of the jobs)")
    if share + flaky > 1:
        raise r.fail(f"{key}.flaky", f"share + flaky is at most 1 (all the jobs), got {share + flaky:g}")
    if (share or flaky) and ack == "auto":
        raise r.fail(key, "an auto-ack consumer cannot reject: the broker counts a job done on delivery")
    tries = r.get(t, key, "tries", int, 0)
    _positive(r, f"{key}.tries", tries)
    requeue = r.get(t, key, "requeue", bool, False)
    park = r.get(t, key, "park_exchange", str, "")
    if tries:
        if requeue:
            raise r.fail(f"{key}.requeue", "tries are counted from x-death, which a requeue never adds")
        if "park_exchange" not in t:
            raise r.fail(key, "tries needs park_exchange (where a job goes after its last try)")
        _known_exchange(r, f"{key}.park_exchange", park, exchanges, default_ok=True)
    elif "park_exchange" in t or "park_key" in t:
        raise r.fail(f"{key}.park_exchange", "a parking lot needs tries = N (after how many tries)")
    return RejectSpec(share, flaky, requeue, tries, park, r.get(t, key, "park_key", str, ""))


def _consumers(r: _Reader, key: str, data: Any, queues: set[str], exchanges: set[str]) -> ConsumerGroupSpec:
    allowed = {"name", "queue", "count", "prefetch", "ack", "work", "label", "reject", "reply"}
    t = r.table(data, key, allowed, {"name", "queue"})
    queue = r.get(t, key, "queue", str, "")
    if queue not in queues:
        raise r.fail(f"{key}.queue", f"no queue named {queue!r} in this scenario")
    count = r.get(t, key, "count", int, 1)
    prefetch = r.get(t, key, "prefetch", int, 1)
    _positive(r, f"{key}.count", count)
    _positive(r, f"{key}.prefetch", prefetch)
    _consumer_count(r, f"{key}.count", count)
    _prefetch(r, f"{key}.prefetch", prefetch)
    wkey = f"{key}.work"
    w = r.table(t.get("work", {}), wkey, {"kind", "seconds", "operations"}, set())
    seconds = r.get(w, wkey, "seconds", float, 0.0)
    _positive(r, f"{wkey}.seconds", seconds)
    ops = r.strings(w, wkey, "operations", ("thumbnail",))
    from broker_sim.domain.image_ops import OPERATIONS  # local: keeps the table in one place

    for op in ops:
        if op not in OPERATIONS:
            raise r.fail(
                f"{wkey}.operations",
                f"unknown image operation {op!r} (known: {', '.join(OPERATIONS)})",
            )
    work = WorkSpec(
        kind=r.choice(w, wkey, "kind", ("image", "log", "delay"), "delay"),  # type: ignore[arg-type]
        seconds=seconds,
        operations=ops,
    )
    name = r.get(t, key, "name", str, "")
    if (why := unsafe_name(name)) is not None:
        raise r.fail(f"{key}.name", why)
    ack = r.choice(t, key, "ack", ("manual", "auto"), "manual")
    return ConsumerGroupSpec(
        name=name,
        queue=queue,
        count=count,
        prefetch=prefetch,
        ack=ack,  # type: ignore[arg-type]
        work=work,
        label=r.get(t, key, "label", str, ""),
        reject=_reject(r, f"{key}.reject", t.get("reject", {}), exchanges, ack),
        reply=r.get(t, key, "reply", bool, False),
    )


def _step(r: _Reader, key: str, data: Any, names: dict[str, set[str]]) -> Step:
    t = r.table(data, key, {"at", "action"} | set().union(*STEP_FIELDS.values()), {"at", "action"})
    action = r.choice(t, key, "action", ACTIONS, "pause")
    extra = set(t) - {"at", "action"} - STEP_FIELDS[action]
    if extra:
        bad = sorted(extra)[0]
        raise r.fail(
            f"{key}.{bad}",
            f"not used by action {action!r} (it takes: "
            f"{', '.join(sorted(STEP_FIELDS[action])) or 'nothing'})",
        )
    for need in sorted(STEP_REQUIRED.get(action, set())):
        if need not in t:
            raise r.fail(key, f"action {action!r} needs '{need}'")
    at = r.get(t, key, "at", float, 0.0)
    _positive(r, f"{key}.at", at)
    for field_, kind in (("group", "consumers"), ("producer", "producers"), ("exchange", "exchanges")):
        value = r.get(t, key, field_, str, "")
        if field_ in t and value not in names[kind]:
            known = ", ".join(sorted(repr(n) for n in names[kind])) or "none"
            raise r.fail(f"{key}.{field_}", f"no {field_} named {value!r} in this scenario (known: {known})")
    count = r.get(t, key, "count", int, 0)
    prefetch = r.get(t, key, "prefetch", int, 0)
    rate = r.get(t, key, "rate", float, 0.0)
    _positive(r, f"{key}.count", count)
    _positive(r, f"{key}.prefetch", prefetch)
    _positive(r, f"{key}.rate", rate)
    _at_most(r, f"{key}.rate", rate, MAX_RATE, "messages per second")
    if action == "scale":
        _consumer_count(r, f"{key}.count", count)
    if action == "burst":
        _at_most(r, f"{key}.count", count, MAX_BURST, "messages in a burst")
    _prefetch(r, f"{key}.prefetch", prefetch)
    return Step(
        at=at,
        action=action,  # type: ignore[arg-type]
        group=r.get(t, key, "group", str, ""),
        producer=r.get(t, key, "producer", str, ""),
        consumer=r.get(t, key, "consumer", str, ""),
        count=count,
        prefetch=prefetch,
        rate=rate,
        exchange=r.get(t, key, "exchange", str, ""),
        routing_key=r.get(t, key, "routing_key", str, ""),
        body=r.get(t, key, "body", str, ""),
        headers=r.headers(t.get("headers", {}), f"{key}.headers"),
        persistent=r.get(t, key, "persistent", bool, False),
        crash=r.get(t, key, "crash", bool, False),
    )


def _expectation(r: _Reader, key: str, data: Any, names: dict[str, set[str]]) -> Expectation:
    allowed = {"metric", "queue", "consumer", "producer", "equals", "at_least", "at_most"}
    t = r.table(data, key, allowed, {"metric"})
    metric = r.choice(t, key, "metric", METRICS, "published")
    bounds = {b: r.get(t, key, b, int, -1) for b in ("equals", "at_least", "at_most") if b in t}
    if not bounds:
        raise r.fail(key, "needs a bound: equals, at_least or at_most")
    for b, v in bounds.items():
        _positive(r, f"{key}.{b}", v)
    queue = r.get(t, key, "queue", str, "")
    if queue and queue not in names["queues"]:
        raise r.fail(f"{key}.queue", f"no queue named {queue!r} in this scenario")
    consumer = r.get(t, key, "consumer", str, "")
    producer = r.get(t, key, "producer", str, "")
    if producer and producer not in names["producers"]:
        known = ", ".join(sorted(repr(n) for n in names["producers"])) or "none"
        raise r.fail(f"{key}.producer", f"no producer named {producer!r} in this scenario (known: {known})")
    _expectation_scope(r, key, metric, (queue, consumer, producer), names["consumers"])
    return Expectation(
        metric=metric,  # type: ignore[arg-type]
        queue=queue,
        consumer=consumer,
        producer=producer,
        equals=bounds.get("equals"),
        at_least=bounds.get("at_least"),
        at_most=bounds.get("at_most"),
    )


def _expectation_scope(
    r: _Reader, key: str, metric: str, where: tuple[str, str, str], groups: set[str]
) -> None:
    """Refuse an expectation that has no meaning where it is asked (it would silently read 0)."""
    queue, consumer, producer = where
    if sum(map(bool, where)) > 1:
        raise r.fail(key, "give one of queue, consumer or producer, not several")
    if producer:
        scope, allowed = f"a producer ({producer!r})", PRODUCER_METRICS
    elif queue:
        scope, allowed = f"a queue ({queue!r})", QUEUE_METRICS
    elif consumer:
        group, _, serial = consumer.rpartition("-")
        if group not in groups or not serial.isdigit() or serial.startswith("0"):
            known = ", ".join(f"{g}-1" for g in sorted(groups)) or "none: the scenario has no consumers"
            raise r.fail(
                f"{key}.consumer",
                f"no consumer named {consumer!r}: consumers are named GROUP-N from 1 (e.g. {known})",
            )
        scope, allowed = f"a consumer ({consumer!r})", CONSUMER_METRICS
    else:
        scope, allowed = "the whole run", RUN_METRICS
    if metric not in allowed:
        hint = (
            " (add queue = …)"
            if metric in ("routed", "overtook") and not queue
            else " (add producer = …)"
            if metric == "max_outstanding"
            else ""
        )
        raise r.fail(
            f"{key}.metric",
            f"{metric!r} is not counted for {scope}{hint}; there: {', '.join(sorted(allowed))}",
        )


def _consumers_at_once(r: _Reader, consumers: list[ConsumerGroupSpec], steps: list[tuple[str, Step]]) -> None:
    """Refuse groups that together, as declared or as the timeline scales them, pass ``MAX_CONSUMERS``."""

    def refuse(key: str, total: int) -> ScenarioError:
        return r.fail(
            key,
            f"{total} consumers at once, over the {MAX_CONSUMERS} a scenario may run "
            f"(each is a channel of its own on one connection, and a connection has at most {CHANNEL_MAX})",
        )

    total = 0
    for i, group in enumerate(consumers):
        total += group.count
        if total > MAX_CONSUMERS:
            raise refuse(f"consumers[{i}].count", total)
    running = {c.name: c.count for c in consumers}
    for key, step in steps:
        if step.action == "scale":
            running[step.group] = step.count
            if (total := sum(running.values())) > MAX_CONSUMERS:
                raise refuse(f"{key}.count", total)


def _unique(r: _Reader, table: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise r.fail(f"{table}[{i}].name", f"{n!r} is used twice; names must be unique")
        seen.add(n)


def parse_scenario(text: str, path: str = "<scenario>") -> Scenario:
    """Parse scenario TOML text; raises :class:`ScenarioError` with a one-line reason."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ScenarioError(path, "", int(m.group(1)) if m else None, f"not valid TOML: {exc}") from None
    r = _Reader(path, text)
    top = {
        "name",
        "title",
        "description",
        "help",
        "seed",
        "exchanges",
        "queues",
        "bindings",
        "producers",
        "consumers",
        "duration",
        "timeline",
        "expect",
    }
    r.table(doc, "", top, {"name", "title"})
    if (why := unsafe_name(r.get(doc, "", "name", str, ""))) is not None:
        raise r.fail("name", why)
    exchanges = [_exchange(r, k, v) for k, v in r.items(doc, "exchanges")]
    exchange_names = {e.name for e in exchanges}
    for i, e in enumerate(exchanges):
        if e.alternate_exchange:
            _known_exchange(
                r,
                f"exchanges[{i}].alternate_exchange",
                e.alternate_exchange,
                exchange_names,
                default_ok=False,
            )
    queues = [_queue(r, k, v, exchange_names) for k, v in r.items(doc, "queues")]
    _unique(r, "exchanges", [e.name for e in exchanges])
    _unique(r, "queues", [q.name for q in queues])
    types: dict[str, Any] = {e.name: e.type for e in exchanges}
    types[DEFAULT_EXCHANGE] = "direct"
    types["\0queues"] = {q.name for q in queues}
    bindings = [b for k, v in r.items(doc, "bindings") for b in _bindings(r, k, v, types)]
    producers = [_producer(r, k, v, types) for k, v in r.items(doc, "producers")]
    consumers = [_consumers(r, k, v, types["\0queues"], exchange_names) for k, v in r.items(doc, "consumers")]
    _unique(r, "producers", [p.name for p in producers])
    _unique(r, "consumers", [c.name for c in consumers])
    for i, c in enumerate(consumers):
        queue = next(q for q in queues if q.name == c.queue)
        if c.reject.tries and queue.dead_letter_exchange is None:
            raise r.fail(
                f"consumers[{i}].reject.tries",
                f"tries are counted when {c.queue!r} dead-letters a rejected job: "
                "give that queue a dead_letter_exchange (the retry's way back)",
            )
    direct = {DIRECT_REPLY_TO} if any(p.direct_reply for p in producers) else set()
    names = {
        "consumers": {c.name for c in consumers},
        "producers": {p.name for p in producers},
        "exchanges": {e.name for e in exchanges} | {DEFAULT_EXCHANGE},
        "queues": {q.name for q in queues} | direct,  # direct reply-to's answers count as a queue's
    }
    steps = sorted(((k, _step(r, k, v, names)) for k, v in r.items(doc, "timeline")), key=lambda ks: ks[1].at)
    _consumers_at_once(r, consumers, steps)
    timeline = [step for _, step in steps]
    expectations = [_expectation(r, k, v, names) for k, v in r.items(doc, "expect")]
    duration = r.get(doc, "", "duration", float, 0.0)
    _positive(r, "duration", duration)
    if timeline and duration and timeline[-1].at > duration:
        raise r.fail(
            "duration", f"the timeline runs to {timeline[-1].at:g} s, past the duration {duration:g} s"
        )
    return Scenario(
        name=r.get(doc, "", "name", str, ""),
        title=r.get(doc, "", "title", str, ""),
        description=r.get(doc, "", "description", str, ""),
        help=r.get(doc, "", "help", str, ""),
        seed=r.get(doc, "", "seed", int, 0),
        exchanges=tuple(exchanges),
        queues=tuple(queues),
        bindings=tuple(bindings),
        producers=tuple(producers),
        consumers=tuple(consumers),
        duration=duration,
        timeline=tuple(timeline),
        expectations=tuple(expectations),
    )


def load_scenario(path: Path) -> Scenario:
    """Read and parse one scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), "", None, f"cannot read the file: {exc}") from None
    return parse_scenario(text, str(path))


def _file_order(path: Path) -> tuple[int, str]:
    digits = re.match(r"\d+", path.name)
    return (int(digits.group()) if digits else 1 << 30, path.name)


def load_scenarios(folder: Path, on_error: Callable[[ScenarioError], None] | None = None) -> list[Scenario]:
    """Every ``*.toml`` scenario in a folder, in file-name order with numbers read as numbers
    (``9-rpc`` before ``10-confirms``).

    A bad file raises, unless ``on_error`` is given: then it is reported there and skipped.
    """
    found: list[Scenario] = []
    for path in sorted(folder.glob("*.toml"), key=_file_order):
        try:
            found.append(load_scenario(path))
        except ScenarioError as exc:
            if on_error is None:
                raise
            on_error(exc)
    return found
