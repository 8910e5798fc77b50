"""Where things sit on the flow diagram: boxes for producers, exchanges, queues and consumers, and
the cell-by-cell paths tokens follow between them. Pure geometry, recomputed when the roster or
the canvas width changes.

Columns, left to right: producers │ exchanges │ queues │ consumers. Each queue gets a band of
rows tall enough for its consumers; edges are right-angle polylines through a "bus" column in
front of each box, so several edges can share a vertical run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from broker_sim.domain.scenario import DEFAULT_EXCHANGE, Scenario
from broker_sim.tui.tokens import Station

Cell = tuple[int, int]
"""(x, y) on the canvas."""

BOX_ROWS = 2
ROW_PITCH = 3
"""Rows per consumer: a two-line box and a blank line."""
MAX_CONSUMERS_DRAWN = 8
MANUAL = "you"


@dataclass(frozen=True)
class Box:
    """A station's box: its top-left cell and width (always two rows tall)."""

    station: Station
    x: int
    y: int
    width: int

    @property
    def left(self) -> Cell:
        """Where edges come in."""
        return (self.x - 1, self.y)

    @property
    def right(self) -> Cell:
        """Where edges go out."""
        return (self.x + self.width, self.y)


@dataclass
class Diagram:
    """The laid-out picture of one scenario at one width."""

    width: int
    height: int
    boxes: dict[Station, Box] = field(default_factory=dict)
    edges: dict[tuple[Station, Station], list[Cell]] = field(default_factory=dict)
    labels: list[tuple[Cell, str, str, int]] = field(default_factory=list)
    """(cell, text, style kind, room): text written on the picture, at most ``room`` cells."""
    hidden_consumers: dict[str, int] = field(default_factory=dict)

    def path(self, start: Station, end: Station) -> list[Cell] | None:
        """Cells a token crosses from one station to the next (either direction of an edge)."""
        cells = self.edges.get((start, end))
        if cells is not None:
            return cells
        back = self.edges.get((end, start))
        return None if back is None else back[::-1]


def _route(start: Cell, bus_x: int, end: Cell) -> list[Cell]:
    """A right-angle path: along start's row to the bus column, along it to end's row, then on."""
    (x0, y0), (x1, y1) = start, end
    cells = [(x, y0) for x in range(x0, bus_x)]
    step = 1 if y1 >= y0 else -1
    cells += [(bus_x, y) for y in range(y0, y1, step)]
    cells += [(x, y1) for x in range(bus_x, x1 + 1)]
    return cells


def exchanges_used(scenario: Scenario) -> list[str]:
    """Exchanges to draw: the scenario's, plus the default one when a producer uses it."""
    names = [e.name for e in scenario.exchanges]
    if any(p.exchange == DEFAULT_EXCHANGE for p in scenario.producers) and DEFAULT_EXCHANGE not in names:
        names.insert(0, DEFAULT_EXCHANGE)
    return names or [DEFAULT_EXCHANGE]


MIN_WIDTH = 80
"""Narrower canvases are drawn at this width and cut at the right."""
ROOMY_WIDTH = 110
"""From this width on, boxes have room for all their words; below it they are narrower and clipped."""


def drawn_width(width: int) -> int:
    """The width the diagram is laid out at for a canvas this wide."""
    return max(width, MIN_WIDTH)


def lay_out(scenario: Scenario, roster: dict[str, list[str]], fallen: dict[str, str], width: int) -> Diagram:
    """Place every box and edge for the scenario at this canvas width."""
    width = drawn_width(width)
    # the gaps carry labels (routing key, binding), the consumer column the latest result
    if width >= ROOMY_WIDTH:
        pw, xw, qw, cw = 15, 18, 30, 20
        flexible = width - (pw + xw + qw) - 2
        g1, g2, g3 = flexible * 20 // 100, flexible * 28 // 100, max(5, flexible * 6 // 100)
    else:
        # at 80 columns the binding gap keeps room for a short key ("error"); boxes are clipped
        pw, xw, qw, cw = 13, 12, 18, 14
        flexible = width - (pw + xw + qw + cw) - 1
        g1, g3 = max(5, flexible * 20 // 100), 5
        g2 = flexible - g1 - g3
    x_p = 1
    x_x = x_p + pw + g1
    x_q = x_x + xw + g2
    x_c = x_q + qw + g3
    cw = max(cw, width - x_c)
    diagram = Diagram(width=width, height=0)

    # queue bands: each consumer a row pitch; the queue in line with its middle consumer
    y = 1
    consumers_of: dict[str, list[str]] = {}
    for group in scenario.consumers:
        names = roster.get(group.name, []) + [n for n in fallen if n.rsplit("-", 1)[0] == group.name]
        consumers_of.setdefault(group.queue, []).extend(names)
    for queue in scenario.queues:
        names = consumers_of.get(queue.name, [])
        shown = names[:MAX_CONSUMERS_DRAWN]
        if len(names) > len(shown):
            diagram.hidden_consumers[queue.name] = len(names) - len(shown)
        rows = max(1, len(shown))
        q_y = y + ROW_PITCH * ((rows - 1) // 2)
        diagram.boxes[("q", queue.name)] = Box(("q", queue.name), x_q, q_y, qw)
        for i, name in enumerate(shown):
            diagram.boxes[("c", name)] = Box(("c", name), x_c, y + ROW_PITCH * i, cw)
        y += ROW_PITCH * rows + 1
    queues_bottom = y

    exchanges = exchanges_used(scenario)
    q_rows = [b.y for s, b in diagram.boxes.items() if s[0] == "q"] or [1]
    middle = (min(q_rows) + max(q_rows)) // 2
    x_rows = [middle + ROW_PITCH * (i - (len(exchanges) - 1) // 2) for i in range(len(exchanges))]
    for name, x_y in zip(exchanges, x_rows, strict=True):
        diagram.boxes[("x", name)] = Box(("x", name), x_x, max(1, x_y), xw)

    producers = [p.name for p in scenario.producers] + [MANUAL]
    p_top = max(1, middle - ROW_PITCH * ((len(producers) - 1) // 2))
    for i, name in enumerate(producers):
        diagram.boxes[("p", name)] = Box(("p", name), x_p, p_top + ROW_PITCH * i, pw)
    diagram.height = max(queues_bottom, p_top + ROW_PITCH * len(producers)) + 1

    # edges: producer → its exchange (the manual producer can publish to any exchange)
    for spec in scenario.producers:
        _edge(diagram, ("p", spec.name), ("x", spec.exchange), x_x - 4)
    for exchange in exchanges:
        _edge(diagram, ("p", MANUAL), ("x", exchange), x_x - 4)
    # exchange → queue along each binding (the default exchange binds every queue by its name)
    for exchange in exchanges:
        bound = [b.queue for b in scenario.bindings if b.exchange == exchange]
        if exchange == DEFAULT_EXCHANGE:
            bound = [q.name for q in scenario.queues]
        for bound_queue in dict.fromkeys(bound):
            if ("q", bound_queue) in diagram.boxes:
                _edge(diagram, ("x", exchange), ("q", bound_queue), x_x + xw + 2)
    for queue_name, names in consumers_of.items():
        for name in names:
            if ("c", name) in diagram.boxes:
                _edge(diagram, ("q", queue_name), ("c", name), x_q + qw + 2)
    return diagram


def _edge(diagram: Diagram, start: Station, end: Station, bus_x: int) -> None:
    a, b = diagram.boxes.get(start), diagram.boxes.get(end)
    if a is None or b is None:
        return
    diagram.edges[(start, end)] = _route(a.right, bus_x, b.left)
