"""The one adapter from a scenario (and its live roster) to the layout's plain graph.

Besides producers → exchanges → queues → groups, the scenario's other ways become edges of their
own kinds: an exchange → exchange binding (``e2e``), an exchange's alternate exchange
(``alternate``), a queue's dead-letter exchange (``dead-letter``, usually a loop back) and a
group that parks failed jobs on an exchange (``publish``, from the group), an RPC server's
answers to the default exchange (``reply``: on to the request's reply queue by its name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from broker_sim.domain.scenario import DEFAULT_EXCHANGE, Scenario
from broker_sim.layout.graph import Edge, FlowGraph, Node

MANUAL = "you"
"""The producer of messages typed by hand: it can publish to any exchange, and is drawn with an
arrow only to those the engine reported it published to."""
PRODUCER_STATE = 5
"""A producer's box likes room for its rate (``  12/s``) after its name."""
GROUP_CONTROLS = 5
"""A group's title row ends in ``− +`` (click to scale): room kept for it."""
KEY_WIDTH = 30
"""A producer's box is at most this much wider to show its routing keys (the rest is cut)."""


def node_id(kind: str, name: str) -> str:
    """A station's id in the graph: its kind's letter and its name (``q:image-jobs``)."""
    return f"{kind}:{name}"


def exchange_label(name: str) -> str:
    """An exchange's name as shown: the nameless default exchange gets a name a user can read."""
    return name if name != DEFAULT_EXCHANGE else "(default)"


def exchanges_used(scenario: Scenario) -> list[str]:
    """Exchanges to draw: the scenario's, plus the default one when a producer uses it."""
    names = [e.name for e in scenario.exchanges]
    if DEFAULT_EXCHANGE in _targets(scenario) and DEFAULT_EXCHANGE not in names:
        names.insert(0, DEFAULT_EXCHANGE)
    return names or [DEFAULT_EXCHANGE]


def _targets(scenario: Scenario) -> set[str]:
    """Exchanges something sends to: producers, dead-lettering queues, parking groups."""
    dead_letter = {q.dead_letter_exchange for q in scenario.queues if q.dead_letter_exchange is not None}
    parked = {g.reject.park_exchange for g in scenario.consumers if g.reject.tries}
    answers = {DEFAULT_EXCHANGE for g in scenario.consumers if g.reply}
    return {p.exchange for p in scenario.producers} | dead_letter | parked | answers


def binding_notes(
    scenario: Scenario, queue: str, exchanges: Sequence[str], *, named: bool = False
) -> tuple[str, ...]:
    """What binds a queue (or an exchange, through exchange bindings), as its box says it: one
    note per exchange bound to it, naming that exchange when there are several or ``named``."""
    notes = []
    for exchange in exchanges:
        if exchange == DEFAULT_EXCHANGE:
            rule = "by its name (implicit)"
        else:
            rules = [
                b.describe() for b in scenario.bindings if b.destination == queue and b.exchange == exchange
            ]
            if not rules:
                continue
            rule = ", ".join(rules)
        source = f"{exchange_label(exchange)}: " if named or len(exchanges) > 1 else ""
        notes.append(f"⇠ {source}{rule}")
    return tuple(notes)


def _key_text(headers: Mapping[str, object]) -> str:
    return " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in headers.items())


def scenario_graph(
    scenario: Scenario,
    consumers: Mapping[str, Sequence[str]] | None = None,
    manual: Sequence[str] = (),
) -> FlowGraph:
    """The scenario's stations and arrows; ``consumers`` (per group, the running and the fallen)
    become each group's cells; ``manual`` are the exchanges messages typed by hand went to."""
    consumers = consumers or {}
    nodes: list[Node] = []
    edges: list[Edge] = []
    exchanges = exchanges_used(scenario)
    for spec in scenario.producers:
        keys = [_key_text(h) for h in spec.headers] or list(spec.routing_keys)
        width = min(KEY_WIDTH, max((len(k) for k in keys), default=0))
        nodes.append(
            Node(
                node_id("p", spec.name),
                "producer",
                spec.name,
                f"▶ {spec.name}",
                detail_width=max(width, len(spec.name) + 2 + PRODUCER_STATE),
            )
        )
        edges.append(Edge(node_id("p", spec.name), node_id("x", spec.exchange), "publish"))
    nodes.append(
        Node(node_id("p", MANUAL), "producer", MANUAL, f"✎ {MANUAL}", detail_rows=1, detail_width=10)
    )
    for exchange in exchanges:
        sources = list(dict.fromkeys(b.exchange for b in scenario.bindings if b.to_exchange == exchange))
        nodes.append(
            Node(
                node_id("x", exchange),
                "exchange",
                exchange,
                f"⇄ {exchange_label(exchange)}",
                # an exchange's box says which exchange feeds it: a key alone reads as its own
                notes=binding_notes(scenario, exchange, sources, named=True),
                detail_width=16,
            )
        )
        if exchange in manual:
            edges.append(Edge(node_id("p", MANUAL), node_id("x", exchange), "publish"))
        edges.extend(Edge(node_id("x", s), node_id("x", exchange), "e2e") for s in sources)
        declared = scenario.exchange(exchange)
        if declared is not None and declared.alternate_exchange:
            edges.append(Edge(node_id("x", exchange), node_id("x", declared.alternate_exchange), "alternate"))
    for queue in scenario.queues:
        binds = {b.exchange for b in scenario.bindings if b.queue == queue.name}
        bound = [x for x in exchanges if x == DEFAULT_EXCHANGE or x in binds]
        nodes.append(
            Node(
                node_id("q", queue.name),
                "queue",
                queue.name,
                f"▤ {queue.name}",
                notes=binding_notes(scenario, queue.name, bound),
                detail_width=26,
            )
        )
        edges.extend(Edge(node_id("x", x), node_id("q", queue.name), "binding") for x in bound)
        if queue.dead_letter_exchange is not None:
            edges.append(
                Edge(node_id("q", queue.name), node_id("x", queue.dead_letter_exchange), "dead-letter")
            )
    for group in scenario.consumers:
        # one consumer needs no grid: the group's own figures are its figures
        members = tuple(consumers.get(group.name, ()))
        cells = members if len(members) > 1 else ()
        nodes.append(
            Node(
                node_id("g", group.name),
                "group",
                group.name,
                f"⚙ {group.name}",
                detail_width=22,
                cells=cells,
                controls=GROUP_CONTROLS,
            )
        )
        edges.append(Edge(node_id("q", group.queue), node_id("g", group.name), "consume"))
        if group.reject.tries:  # on its last try a job is published to the parking exchange
            edges.append(Edge(node_id("g", group.name), node_id("x", group.reject.park_exchange), "publish"))
        if group.reply:  # answers go to the default exchange, which routes them by reply_to
            edges.append(Edge(node_id("g", group.name), node_id("x", DEFAULT_EXCHANGE), "reply"))
    return FlowGraph(tuple(nodes), tuple(edges))
