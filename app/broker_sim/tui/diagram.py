"""Where things sit on the flow diagram, in the tokens' terms (stations), for one canvas width.

The geometry itself is :mod:`broker_sim.layout` (pure, any topology); this maps the tokens'
stations onto it: a producer, exchange or queue is its box, a consumer is its cell in its
group's grid (or the group's box when it is one of the "+N more").
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

from broker_sim.domain.scenario import Scenario
from broker_sim.layout.columns import ordering_ready
from broker_sim.layout.from_scenario import MANUAL, node_id, scenario_graph
from broker_sim.layout.place import CELL_WIDTH, Box, Cell, Picture, place
from broker_sim.tui.tokens import Station

__all__ = ["MANUAL", "Box", "Cell", "Diagram", "control_cells", "lay_out"]


@dataclass
class Diagram:
    """The laid-out picture of one scenario at one width, addressed by station."""

    picture: Picture
    group_of: dict[str, str]
    """Consumer → its group."""

    @property
    def width(self) -> int:
        """The picture's width (the canvas's, or more when the names need more)."""
        return self.picture.width

    @property
    def height(self) -> int:
        """The picture's height."""
        return self.picture.height

    def node(self, station: Station) -> str:
        """The layout node a station is drawn in."""
        kind, name = station
        if kind == "c":
            return node_id("g", self.group_of.get(name, ""))
        return node_id(kind, name)

    def box(self, station: Station) -> Box | None:
        """The box a station is drawn in."""
        return self.picture.boxes.get(self.node(station))

    def spot(self, station: Station) -> Cell | None:
        """The cell a token resting at this station is drawn on."""
        box = self.box(station)
        if box is None:
            return None
        if station[0] == "c":
            cell = next((c for name, c in box.cells if name == station[1]), None)
            if cell is not None:
                return cell
            return (box.x + 1, box.detail_y)
        return None

    def path(self, start: Station, end: Station) -> list[Cell] | None:
        """Cells a token crosses from one station to the next: the arrow between them, or the
        arrows of the shortest way through exchange bindings (hops the trace does not report)."""
        a, b = self.node(start), self.node(end)
        if a == b:
            return None
        routes = self.picture.routes
        if (a, b) in routes:
            return routes[(a, b)]
        if (b, a) in routes:
            return routes[(b, a)][::-1]
        hops = self.hops(a, b)
        if not hops:
            return None
        return [cell for hop in itertools.pairwise(hops) for cell in routes[hop]]

    def hops(self, a: str, b: str) -> list[str]:
        """The nodes on the shortest way from ``a`` to ``b`` along the arrows ([] when none)."""
        came: dict[str, str] = {a: a}
        todo = deque([a])
        while todo:
            here = todo.popleft()
            if here == b:
                way = [b]
                while way[-1] != a:
                    way.append(came[way[-1]])
                return way[::-1]
            for source, target in self.picture.routes:
                if source == here and target not in came:
                    came[target] = here
                    todo.append(target)
        return []

    def selectable(self) -> list[str]:
        """Everything the inspector can show, in reading order: column by column, top to bottom;
        the bindings into a queue just before it, a group's consumers just after it."""
        order: list[str] = []
        for node in self.picture.reading_order():
            if node.startswith("q:"):
                order += [
                    f"b:{a}>{b}"
                    for (a, b), e in self.picture.kinds.items()
                    if b == node and e.kind == "binding"
                ]
            order.append(node)
            if node.startswith("g:"):
                order += [f"c:{name}" for name, _ in self.picture.boxes[node].cells]
        return order

    def pick(self, cell: Cell) -> str | None:
        """What is drawn on a cell: a consumer's cell, a box, or a binding's arrow (or nothing)."""
        box = self.picture.box_at(cell)
        if box is not None:
            x, y = cell
            hit = next((n for n, (cx, cy) in box.cells if cy == y and cx <= x < cx + CELL_WIDTH - 1), None)
            return f"c:{hit}" if hit else box.node
        for (a, b), cells in self.picture.routes.items():
            if self.picture.kinds[(a, b)].kind == "binding" and cell in cells:
                return f"b:{a}>{b}"
        return None

    def control_at(self, cell: Cell) -> tuple[str, int] | None:
        """A group's − / + button under a cell: (group, -1 or +1)."""
        box = self.picture.box_at(cell)
        if box is None or not box.node.startswith("g:") or cell[1] != box.controls_y:
            return None
        minus, plus = control_cells(box)
        step = -1 if cell[0] == minus else 1 if cell[0] == plus else 0
        return (box.node[2:], step) if step else None


def control_cells(box: Box) -> tuple[int, int]:
    """The columns of a group's − and + buttons (on its row ``box.controls_y``)."""
    return box.x + box.width - 5, box.x + box.width - 2


def lay_out(
    scenario: Scenario,
    roster: dict[str, list[str]],
    fallen: dict[str, str],
    width: int,
    manual: tuple[str, ...] = (),
) -> Diagram:
    """Place every station and arrow of the scenario for a canvas this wide (``manual``: the
    exchanges messages typed by hand were published to)."""
    members: dict[str, list[str]] = {}
    group_of: dict[str, str] = {}
    for group in scenario.consumers:
        names = roster.get(group.name, []) + [n for n in fallen if n.rsplit("-", 1)[0] == group.name]
        members[group.name] = names
        group_of.update({n: group.name for n in names})
    # until igraph is warmed up (after the first frame) columns keep their declaration order
    graph = scenario_graph(scenario, members, manual)
    return Diagram(place(graph, width, ordered=ordering_ready()), group_of)
