"""What the inspector says about a station: every figure with where it comes from.

Plain code over a :class:`ScenarioView` (no Textual): the panel only lays these out. A source is
``scenario`` (the file), ``engine`` (what the client saw: its publishes, deliveries, acks) or
``broker`` (what the broker reported: its trace, its queue counts, its management API).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from broker_sim.broker.station_reading import BrokerReading, Json
from broker_sim.domain.events import Acked, Delivered, FlowEvent, Nacked, Published, Returned, Routed
from broker_sim.domain.scenario import DEFAULT_EXCHANGE
from broker_sim.layout.from_scenario import MANUAL, binding_notes, exchange_label
from broker_sim.tui.view_state import ScenarioView, short_id

Source = Literal["scenario", "engine", "broker"]


@dataclass(frozen=True)
class Fact:
    """One line of the panel: a label, a value, and where the value comes from."""

    label: str
    value: str
    source: Source


@dataclass(frozen=True)
class Action:
    """Something the panel offers to do to the station: a button and the app action it runs."""

    label: str
    action: str
    key: str


@dataclass(frozen=True)
class BrokerSide:
    """What the broker's management API said about the station, or why it could not say."""

    reading: BrokerReading | None = None
    """The latest answer about this station; None before the first one."""
    missing: str = ""
    """Why the broker has no management API broker-sim may read ("" when it has one)."""
    no_rates: str = ""
    """Why its API reports no message rates, where that is known ("" for RabbitMQ)."""


@dataclass(frozen=True)
class Inspection:
    """Everything the panel shows about one station."""

    heading: str
    facts: list[Fact]
    recent: list[str]
    actions: list[Action]


def inspect(view: ScenarioView, selection: str, broker: BrokerSide | None = None) -> Inspection:
    """The facts about a selected station (``p:`` ``x:`` ``q:`` ``g:`` ``c:`` node, or ``b:X>Q``).

    ``broker``: the management API's side, when a broker is known (None: a recorded view).
    """
    found = _inspect(view, selection, broker or BrokerSide())
    if broker is not None and not selection.startswith("p:"):
        found.facts.extend(_api_state(broker))
    return found


def _inspect(view: ScenarioView, selection: str, side: BrokerSide) -> Inspection:
    kind, _, name = selection.partition(":")
    api = side.reading
    recent = [_event_line(e) for e in reversed(view.recent.get(selection, ()))]
    if kind == "p":
        return Inspection(
            f"producer {name}", _producer(view, name), recent, [Action("publish…", "publish", "m")]
        )
    if kind == "x":
        publish = Action("publish here…", f"publish({name!r})", "m")
        facts = _exchange(view, name) + _api_exchange(api)
        return Inspection(f"exchange {exchange_label(name)}", facts, recent, [publish])
    if kind == "q":
        purge = Action("purge…", f"purge({name!r})", "e")
        return Inspection(f"queue {name}", _queue(view, name, side), recent, [purge])
    if kind == "g":
        facts = _group(view, name) + _api_consumers(api)
        return Inspection(f"consumer group {name}", facts, _group_recent(view, name), _GROUP_ACTIONS)
    if kind == "c":
        facts = _consumer(view, name) + _api_consumers(api) + _api_channel(side)
        return Inspection(f"consumer {name}", facts, recent, _GROUP_ACTIONS[2:])
    source, _, target = name.partition(">")
    exchange, queue = source.partition(":")[2], target.partition(":")[2]
    facts = _binding(view, exchange, queue) + _api_bindings(api, into_queue=False)
    return Inspection(f"binding {exchange_label(exchange)} → {queue}", facts, [], [])


_GROUP_ACTIONS = [
    Action("+ consumer", "add_consumer", "+"),
    Action("− consumer", "remove_consumer", "-"),
    Action("kill one", "kill", "k"),
    Action("prefetch 1 ↔ ∞", "prefetch", "f"),
]


def _producer(view: ScenarioView, name: str) -> list[Fact]:
    if name == MANUAL:
        return [Fact("publishes", "what you type (m), to any exchange", "scenario")]
    spec = next(p for p in view.scenario.producers if p.name == name)
    keys = ", ".join(" ".join(f"{k}={v}" for k, v in h.items()) for h in spec.headers) or ", ".join(
        repr(k) for k in spec.routing_keys
    )
    return [
        Fact("exchange", exchange_label(spec.exchange), "scenario"),
        Fact("headers" if spec.headers else "routing keys", f"{keys} ({spec.pick})", "scenario"),
        Fact("persistent", "yes" if spec.persistent else "no", "scenario"),
        Fact("mandatory", "yes (unroutable ones come back)" if spec.mandatory else "no", "scenario"),
        Fact("rate", view.stopped(name) or f"{view.rates.get(name, spec.rate):g} msg/s", "engine"),
        Fact("latest key", view.last_key.get(name, "–"), "engine"),
    ]


def _exchange(view: ScenarioView, name: str) -> list[Fact]:
    spec = view.scenario.exchange(name)
    bound = [b for b in view.scenario.bindings if b.exchange == name]
    facts = [
        Fact(
            "type", spec.type if spec else "direct (the default exchange: routes by queue name)", "scenario"
        ),
        Fact("durable", "yes" if spec and spec.durable else "no" if spec else "yes (built in)", "scenario"),
    ]
    if name == DEFAULT_EXCHANGE:
        facts.append(Fact("bindings", "every queue, by its name (implicit)", "scenario"))
    for binding in bound:
        facts.append(Fact(f"→ {binding.queue}", binding.describe(), "scenario"))
    traced = view.traced
    how = (
        "the broker's trace" if traced else "inferred from deliveries" if traced is False else "not known yet"
    )
    facts.append(Fact("routing", how, "broker" if traced else "engine"))
    facts.append(Fact("returned", str(view.tally.returned), "broker"))
    return facts


def _queue(view: ScenarioView, name: str, side: BrokerSide) -> list[Fact]:
    # what moves first (a short terminal shows the panel's top rows only), what was declared after
    api = side.reading
    depth = view.tally.depth.get(name)
    traced = view.traced is not False
    facts = [Fact("routed here", str(view.tally.routed[name]), "broker" if traced else "engine")]
    # the API's own counts where it has them (RabbitMQ's lag its first stats by a few seconds),
    # else a passive declare's and the client's own unacked
    counts = api.queue if api is not None and api.queue is not None else {}
    ready = counts.get("messages_ready", depth.ready if depth is not None else None)
    consumers = counts.get("consumers", depth.consumers if depth is not None else None)
    unacked = counts.get("messages_unacknowledged", depth.unacked if depth is not None else None)
    unacked_from: Source = "broker" if "messages_unacknowledged" in counts else "engine"
    facts += [
        Fact("ready", "?" if ready is None else str(ready), "broker"),
        Fact("unacked", "?" if unacked is None else str(unacked), unacked_from),
        Fact("consumers", "?" if consumers is None else str(consumers), "broker"),
        Fact("rates", _in_out(view.queue_in.rate(name), view.queue_out.rate(name)), "engine"),
    ]
    if counts:
        facts.append(Fact("rates", _queue_rates(counts, side.no_rates), "broker"))
    if purged := view.tally.purged_per_queue[name]:
        facts.append(Fact("purged", f"{purged} (dropped on purpose, not lost)", "engine"))
    facts += [
        Fact("delivered", str(view.tally.delivered_per_queue[name]), "engine"),
        Fact("acked", str(view.tally.acked_per_queue[name]), "engine"),
    ]
    return facts + _declared_queue(view, name) + _api_queue(api)


def _declared_queue(view: ScenarioView, name: str) -> list[Fact]:
    spec = view.scenario.queue(name)
    facts = []
    if spec is not None:
        options = {
            "durable": spec.durable,
            "exclusive": spec.exclusive,
            "auto-delete": spec.auto_delete,
            "server-named": spec.server_named,
        }
        flags = [word for word, on in options.items() if on]
        facts.append(Fact("declared", ", ".join(flags) or "transient", "scenario"))
        if spec.max_length is not None:
            facts.append(Fact("x-max-length", str(spec.max_length), "scenario"))
        if spec.message_ttl_ms is not None:
            facts.append(Fact("x-message-ttl", f"{spec.message_ttl_ms} ms", "scenario"))
    for note in binding_notes(
        view.scenario, name, [DEFAULT_EXCHANGE, *(e.name for e in view.scenario.exchanges)]
    ):
        facts.append(Fact("bound", note.removeprefix("⇠ "), "scenario"))
    return facts


def _api_queue(api: BrokerReading | None) -> list[Fact]:
    if api is None or api.queue is None:
        return _api_bindings(api, into_queue=True) + _api_consumers(api)
    arguments = Fact("arguments", _table(api.queue.get("arguments")), "broker")
    return [arguments, *_api_bindings(api, into_queue=True), *_api_consumers(api)]


def _group(view: ScenarioView, name: str) -> list[Fact]:
    spec = view.scenario.group(name)
    facts = []
    if spec is not None:
        work = spec.work.kind + (f" ({', '.join(spec.work.operations)})" if spec.work.kind == "image" else "")
        facts += [
            Fact("queue", spec.queue, "scenario"),
            Fact("ack", spec.ack, "scenario"),
            Fact("work", work, "scenario"),
        ]
    prefetch = view.prefetch.get(name, 0)
    facts.append(Fact("prefetch", f"{prefetch}" if prefetch else "unlimited", "engine"))
    members = view.roster.get(name, [])
    facts.append(Fact("consumers", str(len(members)), "engine"))
    for consumer in members:
        fig = view.tally.consumers.get(consumer)
        held = f", {fig.in_flight} in hand" if fig and fig.in_flight else ""
        rate = view.consumer_out.rate(consumer)
        pace = "" if rate is None else f", {rate:.1f}/s"
        facts.append(Fact(f"  {consumer}", f"✓ {fig.acked if fig else 0}{held}{pace}", "engine"))
    for consumer, why in view.fallen.items():
        if consumer.rsplit("-", 1)[0] == name:
            facts.append(Fact(f"  {consumer}", f"✝ {why}", "engine"))
    return facts


def _group_recent(view: ScenarioView, name: str) -> list[str]:
    lines = []
    for consumer in view.roster.get(name, []):
        lines += [_event_line(e) for e in view.recent.get(f"c:{consumer}", ())]
    return lines[-8:][::-1]


def _consumer(view: ScenarioView, name: str) -> list[Fact]:
    fig = view.tally.consumers.get(name)
    if name in view.fallen:
        return [Fact("state", f"✝ {view.fallen[name]}", "engine")]
    if fig is None:
        return [Fact("state", "no message yet", "engine")]
    last = (
        f"{short_id(fig.last_message)} {fig.last_work_ms:.0f} ms: {fig.last_result}"
        if fig.last_result
        else "–"
    )
    return [
        Fact("group", fig.group, "engine"),
        Fact("acked", str(fig.acked), "engine"),
        Fact("nacked", str(fig.nacked), "engine"),
        Fact("in hand", str(fig.in_flight), "engine"),
        Fact("rates", _in_out(view.consumer_in.rate(name), view.consumer_out.rate(name)), "engine"),
        Fact("last job", last, "engine"),
    ]


def _binding(view: ScenarioView, exchange: str, queue: str) -> list[Fact]:
    if exchange == DEFAULT_EXCHANGE:
        return [Fact("rule", f"routing key = {queue!r} (implicit)", "scenario")]
    rules = [b for b in view.scenario.bindings if b.exchange == exchange and b.queue == queue]
    facts = [Fact("exchange type", view.scenario.exchange_type(exchange), "scenario")]
    for rule in rules:
        if rule.headers or rule.match:
            facts.append(Fact("x-match", rule.match or "all", "scenario"))
            facts += [Fact(f"  {k}", repr(v), "scenario") for k, v in rule.headers.items()]
        else:
            facts.append(Fact("key", rule.routing_key or "(no key)", "scenario"))
    return facts


def _in_out(rate_in: float | None, rate_out: float | None) -> str:
    if rate_in is None or rate_out is None:
        return "– (after two seconds)"
    return f"{rate_in:.1f}/s in · {rate_out:.1f}/s out"


def _api_state(broker: BrokerSide) -> list[Fact]:
    if broker.missing:
        return [Fact("management API", f"not available ({broker.missing})", "broker")]
    if broker.reading is None:
        return [Fact("management API", "asking…", "broker")]
    if broker.reading.problem:
        return [Fact("management API", f"no answer: {broker.reading.problem}", "broker")]
    return []


def _queue_rates(queue: Json, no_rates: str) -> str:
    stats = queue.get("message_stats")
    if not isinstance(stats, dict) or not stats:
        return f"none: {no_rates}" if no_rates else "none reported yet"
    rates = [f"{_rate(stats, key)} {word}" for key, word in _QUEUE_RATES if f"{key}_details" in stats]
    return " · ".join(rates) or "none yet"


_QUEUE_RATES = (("publish", "in"), ("deliver_get", "out"), ("ack", "acked"), ("redeliver", "redelivered"))


def _rate(stats: Json, key: str) -> str:
    details = stats.get(f"{key}_details")
    rate = details.get("rate") if isinstance(details, dict) else None
    return f"{rate:.1f}/s" if isinstance(rate, int | float) else "?"


def _table(value: object) -> str:
    if not isinstance(value, dict) or not value:
        return "none"
    return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))


def _api_consumers(api: BrokerReading | None) -> list[Fact]:
    if api is None or api.problem:
        return []
    count = len(api.consumers)
    facts = [Fact("at the broker", f"{count} consumer{'s' * (count != 1)}", "broker")]
    for consumer in api.consumers:
        prefetch = consumer.get("prefetch_count")
        ack = "manual ack" if consumer.get("ack_required") else "auto ack (no_ack)"
        details = consumer.get("channel_details")
        number = details.get("number", "?") if isinstance(details, dict) else "?"
        limit = f"prefetch {prefetch or 'unlimited'}" if isinstance(prefetch, int) else "prefetch ?"
        facts.append(Fact(f"  channel {number}", f"{limit} · {ack}", "broker"))
    return facts


def _api_channel(side: BrokerSide) -> list[Fact]:
    api = side.reading
    if api is None or api.problem or not api.consumers:
        return []
    stats = api.channel.get("message_stats") if api.channel is not None else None
    if not isinstance(stats, dict):
        return [Fact("rates", f"none: {side.no_rates}" if side.no_rates else "none reported yet", "broker")]
    keys = (("deliver_get", "in"), ("ack", "acked"))
    return [Fact("rates", " · ".join(f"{_rate(stats, k)} {w}" for k, w in keys) or "none yet", "broker")]


def _api_exchange(api: BrokerReading | None) -> list[Fact]:
    if api is None or api.exchange is None:
        return _api_bindings(api, into_queue=False)
    facts = [
        Fact("declared", f"{api.exchange.get('type', '?')}, {_flags(api.exchange)}", "broker"),
        Fact("arguments", _table(api.exchange.get("arguments")), "broker"),
    ]
    return facts + _api_bindings(api, into_queue=False)


def _flags(entity: Json) -> str:
    flags = [word for word in ("durable", "auto_delete", "internal") if entity.get(word)]
    return ", ".join(flag.replace("_", "-") for flag in flags) or "transient"


def _api_bindings(api: BrokerReading | None, *, into_queue: bool) -> list[Fact]:
    """The API's bindings: into a queue (named by their source), or out of an exchange or one
    binding (named by their destination)."""
    if api is None or api.problem:
        return []
    facts = []
    for binding in api.bindings:
        where = binding.get("source") if into_queue else binding.get("destination")
        label = f"← {where or '(default)'}" if into_queue else f"→ {where}"
        key = binding.get("routing_key") or "(no key)"
        arguments = binding.get("arguments")
        facts.append(Fact(label, f"key {key}" + (f", {_table(arguments)}" if arguments else ""), "broker"))
    return facts


def _event_line(event: FlowEvent) -> str:
    match event:
        case Published(message_id=mid, routing_key=key, headers=headers, exchange=x):
            what = " ".join(f"{k}={v}" for k, v in headers.items()) if headers else f"key {key or '(none)'}"
            return f"{short_id(mid)} published to {exchange_label(x)}, {what}"
        case Returned(message_id=mid, routing_key=key):
            return f"{short_id(mid)} returned (key {key or '(none)'}): no binding matched"
        case Routed(message_id=mid, routing_key=key, queues=queues, source=source):
            return f"{short_id(mid)} key {key or '(none)'} → {', '.join(queues) or 'nowhere'} ({source})"
        case Delivered(message_id=mid, consumer=c, redelivered=again):
            return f"{short_id(mid)} delivered to {c}{' REDELIVERED' if again else ''}"
        case Acked(message_id=mid, consumer=c, result=result, work_ms=ms):
            return f"{short_id(mid)} acked by {c} in {ms:.0f} ms: {result or 'done'}"
        case Nacked(message_id=mid, consumer=c, requeue=requeue):
            return f"{short_id(mid)} rejected by {c}, {'requeued' if requeue else 'dropped'}"
        case _:
            return str(event)
