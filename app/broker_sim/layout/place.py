"""Stations on a character grid: boxes in columns, arrows as right-angle paths between them.

Every box is as wide as its column; a column is never narrower than its longest title (a name
is never cut) and the notes (binding keys, header rules) wrap inside it. Arrows leave a box on
its right at its title row and enter the next box on its left through a vertical "bus" in the gap
between the columns: one bus per source, so arrows from different stations never share a run.
An arrow that skips a column crosses it on a free row; an arrow that goes back (a dead-letter
loop) runs along a lane of its own below the picture.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from broker_sim.layout.columns import column_of, columns
from broker_sim.layout.graph import Edge, FlowGraph, Node

Cell = tuple[int, int]
"""(x, y) on the grid."""

PAD = 2
"""A box's text has a blank cell on each side."""
MIN_GAP = 5
"""A gap tokens can be seen travelling in; narrower gaps are taken only when the names need it."""
BUS_ROOM = 2
"""A gap's cells besides its buses: the one an arrow leaves a box by and the arrowhead."""
MAX_GAP = 14
LAST_COLUMN_EXTRA = 24
"""Spare room the last column (consumer groups: the latest job) takes before the gaps widen."""
NOTE_WIDTH = 34
"""Notes wider than this wrap even when there is room: a box stays a box, not a banner."""
CELL_WIDTH = 8
"""A consumer's cell in a group's grid: ``12 ✓99●`` and a space."""
GRID_COLUMNS = 6
"""Consumer cells per row a group likes, room permitting."""


@dataclass(frozen=True, slots=True)
class Box:
    """Where one station is drawn, and where each kind of its text goes.

    Rows, top to bottom: the title (wrapped into ``title``), ``detail_rows`` rows of figures,
    the notes (already wrapped to the width), the consumer cells, and a "+N more" row when
    ``hidden`` cells did not fit.
    """

    node: str
    x: int
    y: int
    width: int
    height: int
    title: tuple[str, ...]
    detail_rows: int
    notes: tuple[str, ...]
    cells: tuple[tuple[str, Cell], ...] = ()
    hidden: int = 0
    controls_row: int = 0
    """Which row holds the buttons (a group's − +): 0 the title row, 1 the first row of figures
    (where the title leaves no room for them)."""

    @property
    def detail_y(self) -> int:
        """The first row of figures."""
        return self.y + len(self.title)

    @property
    def controls_y(self) -> int:
        """The row of the box's buttons, at its right end."""
        return self.detail_y if self.controls_row else self.y

    @property
    def notes_y(self) -> int:
        """The first row of notes."""
        return self.detail_y + self.detail_rows

    @property
    def more_y(self) -> int:
        """The "+N more" row (meaningful when ``hidden``)."""
        return self.y + self.height - 1

    @property
    def left(self) -> Cell:
        """Where arrows come in (the arrowhead's cell)."""
        return (self.x - 1, self.y)

    @property
    def right(self) -> Cell:
        """Where arrows go out."""
        return (self.x + self.width, self.y)

    def holds(self, cell: Cell) -> bool:
        """True when the cell is inside the box."""
        x, y = cell
        return self.x <= x < self.x + self.width and self.y <= y < self.y + self.height


@dataclass
class Picture:
    """A laid-out graph: its size, its boxes and the cells of every arrow."""

    width: int
    height: int
    boxes: dict[str, Box] = field(default_factory=dict)
    routes: dict[tuple[str, str], list[Cell]] = field(default_factory=dict)
    kinds: dict[tuple[str, str], Edge] = field(default_factory=dict)
    columns: list[list[str]] = field(default_factory=list)

    def box_at(self, cell: Cell) -> Box | None:
        """The box covering a cell, if any."""
        return next((b for b in self.boxes.values() if b.holds(cell)), None)

    def reading_order(self) -> list[str]:
        """Stations as a reader meets them: column by column, top to bottom."""
        return [node for column in self.columns for node in column]


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, max(1, width), break_on_hyphens=False, break_long_words=False) or [""]


def _min_width(node: Node) -> int:
    """The narrowest box that shows the name and every word of the notes in full (buttons that
    do not fit after the name go down to the row of figures)."""
    words = [w for note in node.notes for w in note.split()]
    cell = CELL_WIDTH if node.cells else 0
    controls = node.controls if not node.detail_rows else 0
    return max(len(node.title) + controls, node.controls, *(len(w) for w in words), cell - 1, 1) + PAD


def _natural_width(node: Node) -> int:
    notes = max((min(len(n), NOTE_WIDTH) for n in node.notes), default=0)
    grid = min(len(node.cells), GRID_COLUMNS) * CELL_WIDTH - 1 if node.cells else 0
    title = len(node.title) + node.controls
    return max(_min_width(node), title + PAD, node.detail_width + PAD, notes + PAD, grid + PAD)


def _box(node: Node, width: int) -> tuple[tuple[str, ...], tuple[str, ...], int, int, int]:
    """Title lines, note lines, cells per row, cell rows and hidden cells at this width."""
    inner = width - PAD
    title = (node.title,) if len(node.title) <= inner else tuple(_wrap(node.title, inner))
    notes = tuple(line for note in node.notes for line in _wrap(note, inner))
    per_row = max(1, (inner + 1) // CELL_WIDTH)
    rows = -(-len(node.cells) // per_row)
    hidden = 0
    if rows > node.max_cell_rows:
        rows = node.max_cell_rows
        hidden = len(node.cells) - rows * per_row  # said on a row of its own: "+N more"
    return title, notes, per_row, rows, hidden


def _height(node: Node, width: int) -> int:
    title, notes, _, rows, hidden = _box(node, width)
    return len(title) + node.detail_rows + len(notes) + rows + (1 if hidden else 0)


def place(graph: FlowGraph, width: int, *, ordered: bool = True) -> Picture:
    """Lay the graph out for a canvas ``width`` cells wide (wider only if its names need more);
    ``ordered=False`` keeps each column in declaration order (see :func:`columns`)."""
    order = columns(graph, ordered=ordered)
    column = column_of(graph)
    nodes = {n.id: n for n in graph.nodes}
    edges = list(graph.edges)
    # buses: per gap, one per source with arrows into or past the column to its right, and one
    # per loop back
    gap_users: list[list[tuple[str, str]]] = [[] for _ in range(len(order) + 1)]

    def use(gap: int, who: tuple[str, str]) -> None:
        if who not in gap_users[gap]:
            gap_users[gap].append(who)

    for edge in edges:
        cs, ct = column[edge.source], column[edge.target]
        if ct > cs:
            if ct > cs + 1:  # its way past the next column starts down the source's bus there
                use(cs + 1, ("in", edge.source))
            use(ct, ("in", edge.source))
        else:
            use(cs + 1, ("back-out", f"{edge.source}>{edge.target}"))
            use(ct, ("back-in", f"{edge.source}>{edge.target}"))
    # a gap's least width holds its buses; it likes room for a token to be seen between them
    gap_mins = [len(users) + BUS_ROOM if i else 1 for i, users in enumerate(gap_users)]
    if not gap_users[-1]:
        gap_mins[-1] = 0
    gap_nats = [max(MIN_GAP, m + 1) if i and m else m for i, m in enumerate(gap_mins)]
    mins = [max((_min_width(nodes[i]) for i in col), default=0) for col in order]
    nats = [max((_natural_width(nodes[i]) for i in col), default=0) for col in order]
    fitted = _fit(mins + gap_mins, nats + gap_nats, width)
    widths, gaps = fitted[: len(order)], fitted[len(order) :]
    spare = width - sum(widths) - sum(gaps)
    if spare > 0:  # the rest goes to the last column's latest job, the gaps (tokens travel there), then it
        last = min(spare, LAST_COLUMN_EXTRA)
        inner = len(order) - 1
        each = min(MAX_GAP - MIN_GAP, (spare - last) // inner) if inner else 0
        for i in range(1, len(order)):
            gaps[i] += each
        widths[-1] += spare - each * inner
    xs: list[int] = []
    x = 0
    for i, w in enumerate(widths):
        x += gaps[i]
        xs.append(x)
        x += w
    total_width = max(width, x + gaps[-1])

    heights = {i: _height(nodes[i], widths[column[i]]) for i in nodes}
    ys = _rows(order, heights, edges)
    picture = Picture(width=total_width, height=0, columns=order)
    for node_id, node in nodes.items():
        c = column[node_id]
        w = widths[c]
        title, notes, per_row, rows, hidden = _box(node, w)
        y = ys[node_id]
        top = y + len(title) + node.detail_rows + len(notes)
        shown = node.cells[: rows * per_row]
        grid = tuple(
            (name, (xs[c] + 1 + (k % per_row) * CELL_WIDTH, top + k // per_row))
            for k, name in enumerate(shown)
        )
        below = bool(node.controls) and len(title[0]) + node.controls > w - PAD
        picture.boxes[node_id] = Box(
            node_id, xs[c], y, w, heights[node_id], title, node.detail_rows, notes, grid, hidden, int(below)
        )
    bottom = max((b.y + b.height for b in picture.boxes.values()), default=0)
    # loops back nest like boxes in boxes: the one into the lowest station is innermost (the
    # lane just below the boxes, the rightmost bus where it comes back in, the leftmost where
    # it leaves), the one into the topmost station outermost, so loops do not cross each other
    loops = sorted(
        (e for e in edges if column[e.target] <= column[e.source]),
        key=lambda e: (picture.boxes[e.target].y, picture.boxes[e.source].y),
        reverse=True,
    )
    rank = {f"{e.source}>{e.target}": i for i, e in enumerate(loops)}
    for users in gap_users:
        for side, sign in (("back-out", 1), ("back-in", -1)):
            slots = [i for i, (kind, _) in enumerate(users) if kind == side]
            ranked = sorted((users[i] for i in slots), key=lambda u: sign * rank[u[1]])
            for i, who in zip(slots, ranked, strict=True):
                users[i] = who
    lanes = {key: bottom + 1 + i for key, i in rank.items()}
    bus_x = {
        (gap, who): (xs[gap] - gaps[gap] if gap < len(xs) else x) + 1 + k
        for gap, users in enumerate(gap_users)
        for k, who in enumerate(users)
    }
    for edge in edges:
        a, b = picture.boxes[edge.source], picture.boxes[edge.target]
        cs, ct = column[edge.source], column[edge.target]
        if ct > cs + 1:
            free = _free_row(picture, order[cs + 1 : ct], a.y)
            cells = _route(
                a.right,
                [bus_x[(cs + 1, ("in", edge.source))]],
                free,
                bus_x[(ct, ("in", edge.source))],
                b.left,
            )
        elif ct > cs:
            cells = _route(a.right, [], a.y, bus_x[(ct, ("in", edge.source))], b.left)
        else:  # a loop back: down to a lane of its own below everything, along it, and up
            key = f"{edge.source}>{edge.target}"
            cells = _route(
                a.right,
                [bus_x[(cs + 1, ("back-out", key))]],
                lanes[key],
                bus_x[(ct, ("back-in", key))],
                b.left,
            )
        picture.routes[(edge.source, edge.target)] = cells
        picture.kinds[(edge.source, edge.target)] = edge
    picture.height = bottom + len(loops) + 1
    return picture


def _fit(mins: list[int], nats: list[int], width: int) -> list[int]:
    """Widths of columns and gaps: natural if they fit, else shrunk toward their minimum (never
    below it)."""
    room = width
    if sum(nats) <= room:
        return list(nats)
    if sum(mins) >= room:
        return list(mins)
    give = sum(n - m for n, m in zip(nats, mins, strict=True))
    spare = room - sum(mins)
    return [m + (n - m) * spare // give for n, m in zip(nats, mins, strict=True)]


def _rows(order: list[list[str]], heights: dict[str, int], edges: list[Edge]) -> dict[str, int]:
    """Each box's top row: the tallest column stacked, the others level with their neighbours."""
    neighbours: dict[str, list[str]] = {}
    for edge in edges:
        neighbours.setdefault(edge.source, []).append(edge.target)
        neighbours.setdefault(edge.target, []).append(edge.source)
    tall = [sum(heights[n] + 1 for n in col) for col in order]
    anchor = tall.index(max(tall)) if tall else 0
    ys: dict[str, int] = {}
    _stack(order[anchor], heights, ys, {})
    sweep = [*range(anchor - 1, -1, -1), *range(anchor + 1, len(order))]
    # the first sweep levels every column with the anchor; the next ones let a tall box (a
    # group's grid) push its neighbours down too, so a queue stays level with its consumers
    for columns_now in (sweep, [anchor, *sweep], [anchor, *sweep]):
        for c in columns_now:
            wanted: dict[str, float] = {}
            for node in order[c]:
                # a neighbour with many arrows (an exchange fanning out) pulls each one weakly
                placed = [(ys[n], 1 / len(neighbours[n])) for n in neighbours.get(node, []) if n in ys]
                if placed:
                    wanted[node] = sum(y * w for y, w in placed) / sum(w for _, w in placed)
            _stack(order[c], heights, ys, wanted)
    top = min(ys.values(), default=0)
    return {node: y - top for node, y in ys.items()}


def _stack(column: list[str], heights: dict[str, int], ys: dict[str, int], wanted: dict[str, float]) -> None:
    """Top to bottom in order, each box at its wanted row or just below the one above it; then the
    column moves as one so that, on average, its boxes sit where they want (a pair of producers
    centred on their exchange)."""
    y = 0
    for node in column:
        ys[node] = max(y, round(wanted.get(node, y)))
        y = ys[node] + heights[node] + 1
    if wanted:
        shift = round(sum(w - ys[n] for n, w in wanted.items()) / len(wanted))
        shift = max(shift, -min(ys[n] for n in column))
        for node in column:
            ys[node] += shift


def _free_row(picture: Picture, between: list[list[str]], near: int) -> int:
    """The row nearest ``near`` that no box in the columns ``between`` covers."""
    spans = [
        (picture.boxes[n].y, picture.boxes[n].y + picture.boxes[n].height) for col in between for n in col
    ]
    for step in range(0, 2 * picture_bottom(picture) + 2):
        row = near + (step + 1) // 2 * (1 if step % 2 else -1)
        if row >= 0 and all(not top <= row < end for top, end in spans):
            return row
    return picture_bottom(picture)


def picture_bottom(picture: Picture) -> int:
    """The first row below every box."""
    return max((b.y + b.height for b in picture.boxes.values()), default=0)


def _route(start: Cell, out_buses: list[int], via_row: int, in_bus: int, end: Cell) -> list[Cell]:
    """A right-angle path: right to the exit bus, along ``via_row``, to the entry bus, to the end."""
    path: list[Cell] = []
    x, y = start

    def go(to: Cell) -> None:
        nonlocal x, y
        tx, ty = to
        while (x, y) != (tx, ty):
            path.append((x, y))
            if x != tx:
                x += 1 if tx > x else -1
            else:
                y += 1 if ty > y else -1

    for bus in out_buses:
        go((bus, y))
        go((bus, via_row))
    go((in_bus, y))
    go((in_bus, end[1]))
    go(end)
    path.append(end)
    return path
