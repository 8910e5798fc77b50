"""What the inspector says about a station: every figure with where it comes from.

Plain code over a :class:`ScenarioView` (no Textual): the panel only lays these out. A source is
``scenario`` (the file), ``engine`` (what the client saw: its publishes, deliveries, acks) or
``broker`` (what the broker reported: its trace, its queue counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
class Inspection:
    """Everything the panel shows about one station."""

    heading: str
    facts: list[Fact]
    recent: list[str]
    actions: list[Action]


def inspect(view: ScenarioView, selection: str) -> Inspection:
    """The facts about a selected station (``p:`` ``x:`` ``q:`` ``g:`` ``c:`` node, or ``b:X>Q``)."""
    kind, _, name = selection.partition(":")
    recent = [_event_line(e) for e in reversed(view.recent.get(selection, ()))]
    if kind == "p":
        return Inspection(
            f"producer {name}", _producer(view, name), recent, [Action("publish…", "publish", "m")]
        )
    if kind == "x":
        publish = Action("publish here…", f"publish({name!r})", "m")
        return Inspection(f"exchange {exchange_label(name)}", _exchange(view, name), recent, [publish])
    if kind == "q":
        return Inspection(f"queue {name}", _queue(view, name), recent, [])
    if kind == "g":
        return Inspection(
            f"consumer group {name}", _group(view, name), _group_recent(view, name), _GROUP_ACTIONS
        )
    if kind == "c":
        return Inspection(f"consumer {name}", _consumer(view, name), recent, _GROUP_ACTIONS[2:])
    source, _, target = name.partition(">")
    exchange, queue = source.partition(":")[2], target.partition(":")[2]
    return Inspection(
        f"binding {exchange_label(exchange)} → {queue}", _binding(view, exchange, queue), [], []
    )


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


def _queue(view: ScenarioView, name: str) -> list[Fact]:
    spec = view.scenario.queue(name)
    depth = view.tally.depth.get(name)
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
    traced = view.traced is not False
    facts += [
        Fact("routed here", str(view.tally.routed[name]), "broker" if traced else "engine"),
        Fact("ready", "?" if depth is None or depth.ready is None else str(depth.ready), "broker"),
        Fact("unacked", "?" if depth is None else str(depth.unacked), "engine"),
        Fact(
            "consumers", "?" if depth is None or depth.consumers is None else str(depth.consumers), "broker"
        ),
        Fact("delivered", str(view.tally.delivered_per_queue[name]), "engine"),
        Fact("acked", str(view.tally.acked_per_queue[name]), "engine"),
    ]
    return facts


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
        facts.append(Fact(f"  {consumer}", f"✓ {fig.acked if fig else 0}{held}", "engine"))
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
