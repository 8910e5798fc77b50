"""The layout's input: stations (nodes) and the arrows between them (edges), nothing drawn yet."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

NodeKind = Literal["producer", "exchange", "queue", "group"]
EdgeKind = Literal["publish", "binding", "e2e", "alternate", "dead-letter", "consume", "reply"]

INFERRED_EDGES: frozenset[EdgeKind] = frozenset({"e2e", "alternate", "reply"})
"""Hops no event reports, drawn as inferred: the trace names the first exchange and the final
queues only (so not exchange → exchange hops nor alternate exchanges), and an RPC server's
answer is published without an event of its own (its way is the request's ``reply_to``)."""


@dataclass(frozen=True, slots=True)
class Node:
    """One station and what its box must hold.

    ``title`` (the kind's mark and the name) and ``notes`` (binding keys, header rules) are shown
    in full, wrapped if need be, never cut. ``detail_rows`` rows of figures are filled by whoever
    draws the box and may be shortened; ``detail_width`` is how wide they like to be. A consumer
    group lists its consumers in ``cells``: drawn as a grid, at most ``max_cell_rows`` rows, the
    rest as a "+N more" row.
    """

    id: str
    kind: NodeKind
    name: str
    title: str
    notes: tuple[str, ...] = ()
    detail_rows: int = 1
    detail_width: int = 0
    cells: tuple[str, ...] = ()
    max_cell_rows: int = 4
    controls: int = 0
    """Cells kept free at the right of the title row for buttons (a group's − and +)."""


@dataclass(frozen=True, slots=True)
class Edge:
    """An arrow from one station to another."""

    source: str
    target: str
    kind: EdgeKind

    @property
    def inferred(self) -> bool:
        """True for a hop no event reports (exchange → exchange, alternate exchange, RPC reply)."""
        return self.kind in INFERRED_EDGES


@dataclass(frozen=True)
class FlowGraph:
    """Stations and arrows, in the order they were declared (the layout keeps it where it can)."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    _by_id: dict[str, Node] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {n.id: n for n in self.nodes})
        if len(self._by_id) != len(self.nodes):
            raise ValueError("two stations share one id")
        unknown = [e for e in self.edges if e.source not in self._by_id or e.target not in self._by_id]
        if unknown:
            raise ValueError(f"an edge joins a station that is not in the graph: {unknown[0]}")

    def node(self, node_id: str) -> Node:
        """The station with that id."""
        return self._by_id[node_id]

    def has(self, node_id: str) -> bool:
        """True when the graph holds that station."""
        return node_id in self._by_id
