"""The flow diagram: one Line-API widget that draws boxes, edges and moving tokens.

Measured on these machines: one ``render_line`` canvas with 50 moving tokens at 30 fps costs a
quarter of a core, where redrawing a ``Static`` with rich text every frame lost frames and
throughput. So the picture is a character grid: the still background (boxes, edges, labels) is
rebuilt only when figures change, and each frame only overlays the tokens.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from broker_sim.layout.columns import ordering_ready
from broker_sim.layout.from_scenario import GROUP_CONTROLS
from broker_sim.layout.place import CELL_WIDTH
from broker_sim.tui.diagram import MANUAL, Box, Cell, Diagram, control_cells, lay_out
from broker_sim.tui.tokens import FLASH_FRAMES, Station, Token
from broker_sim.tui.view_state import ScenarioView

N, E, S, W = 1, 2, 4, 8
LINES = {
    E | W: "─", N | S: "│", E | S: "┌", W | S: "┐", N | E: "└", N | W: "┘",
    N | E | S: "├", N | W | S: "┤", E | W | S: "┬", N | E | W: "┴", N | E | S | W: "┼",
    E: "─", W: "─", N: "│", S: "│",
}  # fmt: skip
DASHED = {E | W: "╌", N | S: "╎", E: "╌", W: "╌", N: "╎", S: "╎"}
"""Edges whose routing is inferred are dashed: the broker did not report them."""

Overlay = dict[int, dict[int, tuple[str, str]]]
"""Tokens to draw: row → column → (glyph, style kind)."""

GLYPHS = {"message": "●", "inferred": "○", "returned": "●", "redelivered": "◆"}
ENDINGS = {"acked": "✓", "nacked": "✖", "returned": "↩", "lost": "✖"}
LEGEND = [
    ("● message", "token"),
    ("○ routing inferred", "token-inferred"),
    ("◆ redelivered", "token-redelivered"),
    ("● returned", "token-returned"),
    ("✓ acked", "ok"),
    ("✖ rejected / lost", "bad"),
]
LEGEND_BRIEF = ["● msg", "○ inferred", "◆ redelivered", "● returned", "✓ acked", "✖ lost"]
"""The legend on a narrow terminal."""


class FlowCanvas(Widget):
    """Draws one scenario's topology and its tokens; call :meth:`redraw` when figures changed."""

    class Picked(Message):
        """A station was clicked: the tab shows it in the inspector."""

        def __init__(self, selection: str) -> None:
            super().__init__()
            self.selection = selection

    class Scaled(Message):
        """A group's − or + was clicked."""

        def __init__(self, group: str, step: int) -> None:
            super().__init__()
            self.group = group
            self.step = step

    COMPONENT_CLASSES = {
        "flow--producer",
        "flow--exchange",
        "flow--queue",
        "flow--consumer",
        "flow--fallen",
        "flow--selected",
        "flow--picked",
        "flow--control",
        "flow--edge",
        "flow--edge-inferred",
        "flow--label",
        "flow--dim",
        "flow--token",
        "flow--token-inferred",
        "flow--token-returned",
        "flow--token-redelivered",
        "flow--ok",
        "flow--bad",
    }
    DEFAULT_CSS = """
    FlowCanvas { width: auto; height: auto; }
    """

    def __init__(self, view: ScenarioView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = view
        self.selected_group: str | None = view.scenario.consumers[0].name if view.scenario.consumers else None
        self._diagram: Diagram | None = None
        self._layouts = 0
        """How many layouts were made: a new one invalidates the cached arrows."""
        self._chars: list[list[str]] = []
        self._kinds: list[list[str]] = []
        self._strips: dict[int, Strip] = {}
        self._edges: tuple[tuple[object, ...], list[list[str]], list[list[str]]] | None = None
        """The arrows and the legend, drawn once per layout (and selection, and routing source):
        what every rebuild of the figures starts from."""
        self._overlay: Overlay | None = None
        """Tokens per row, per cell (None: to be placed again before the next paint)."""
        self._painted: Overlay = {}
        """The tokens as last painted: a frame repaints only the rows where they differ."""
        self._styles: dict[str, Style] = {}
        self._stale = True
        self._key: tuple[object, ...] = ()
        self._room = 0
        self._recheck = True
        """The width the canvas may take without scrolling: the picture is laid out for it."""
        self.selected: str | None = None
        """The station the inspector shows (a layout node id), drawn highlighted."""

    # -- sizing -----------------------------------------------------------------------------------

    def get_content_width(self, container: Size, viewport: Size) -> int:
        """The room there is, or more when the names need more (the tab then scrolls sideways)."""
        self._room = container.width
        return self._layout(container.width).width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """As tall as the diagram, plus the legend."""
        return self._layout(self._room or width).height + 1

    @property
    def diagram(self) -> Diagram:
        """The picture as laid out for the room there is now."""
        return self._layout(self._room or self.size.width)

    def _layout_key(self, width: int) -> tuple[object, ...]:
        view = self.view
        roster = tuple(map(tuple, view.roster.values()))
        return (width, roster, tuple(view.fallen), view.manual_exchanges, ordering_ready())

    def _layout(self, width: int) -> Diagram:
        # render_line asks for every row of every frame: the roster is compared only after
        # redraw() (figures changed, at most 8 times a second), the width every time
        if self._diagram is not None and not self._recheck and width == self._key[0]:
            return self._diagram
        self._recheck = False
        key = self._layout_key(width)
        if self._diagram is None or key != self._key:
            old = None if self._diagram is None else (self._diagram.width, self._diagram.height)
            self._key = key
            view = self.view
            self._layouts += 1
            self._diagram = lay_out(view.scenario, view.roster, view.fallen, width, view.manual_exchanges)
            self._stale = True
            if old is not None and (self._diagram.width, self._diagram.height) != old:
                # a consumer came or went and the picture changed size: ask for a new layout
                # (after this render pass, not in the middle of it)
                self.call_later(self.refresh, layout=True)
        return self._diagram

    def on_click(self, event: events.Click) -> None:
        """A click on a group's − / + scales it; on a station, a consumer or a binding selects it."""
        cell = (event.x, event.y)
        control = self.diagram.control_at(cell)
        if control is not None:
            self.post_message(self.Scaled(*control))
        elif (picked := self.diagram.pick(cell)) is not None:
            self.post_message(self.Picked(picked))

    def select(self, selection: str | None) -> None:
        """Highlight a station (or nothing)."""
        if selection != self.selected:
            self.selected = selection
            self.redraw()

    # -- drawing ----------------------------------------------------------------------------------

    def show(self, view: ScenarioView) -> None:
        """Draw another view of the same scenario (a story starts afresh): lay out again."""
        self.view = view
        self._diagram = None
        self._recheck = True
        self._overlay = None
        self.refresh(layout=True)

    def redraw(self) -> None:
        """Figures or the roster changed: rebuild the still picture on the next frame."""
        self._stale = True
        self._recheck = True
        self.refresh()

    def tokens_moved(self, *, repaint: bool = True) -> None:
        """Only tokens moved: keep the background, redraw the overlay (now, or with the next paint).

        Repainting now touches only the rows whose tokens changed: with 100 consumers or 20
        queues most rows hold no token, and a whole-canvas refresh 30 times a second cost more
        than the tokens themselves."""
        self._overlay = None
        if not repaint:
            return
        if self._stale or self._diagram is None:
            self.refresh()
            return
        self._overlay = new = self._place_tokens(self._diagram)
        old, self._painted = self._painted, new
        width = self.size.width
        rows = [y for y in old.keys() | new.keys() if old.get(y) != new.get(y)]
        if rows:
            self.refresh(*(Region(0, y, width, 1) for y in rows))

    def notify_style_update(self) -> None:
        """The theme changed: styles are looked up again."""
        super().notify_style_update()
        self._styles = {}
        self._strips = {}

    def _style(self, kind: str) -> Style:
        style = self._styles.get(kind)
        if style is None:
            base = self.rich_style
            style = base if kind == "" else base + self.get_component_rich_style(f"flow--{kind}")
            self._styles[kind] = style
        return style

    def render_line(self, y: int) -> Strip:
        """One row of the picture: the cached background, with the row's tokens on top."""
        diagram = self.diagram
        if self._stale:
            self._build(diagram)
        if self._overlay is None:
            self._overlay = self._painted = self._place_tokens(diagram)
        strip = self._strips.get(y)
        if strip is None:
            strip = self._strips[y] = self._row_strip(y)
        tokens = self._overlay.get(y)
        return _with_tokens(strip, tokens, self._style) if tokens else strip

    def _row_strip(self, y: int) -> Strip:
        if y >= len(self._chars):
            return Strip.blank(self.size.width, self.rich_style)
        chars, kinds = self._chars[y], self._kinds[y]
        segments: list[Segment] = []
        start = 0
        for x in range(1, len(chars) + 1):  # one segment per run of one kind
            if x == len(chars) or kinds[x] != kinds[start]:
                segments.append(Segment("".join(chars[start:x]), self._style(kinds[start])))
                start = x
        # simplify(): one segment per run of one style, however the row was built, so that the
        # same picture is the same segments (snapshots compare them) with or without tokens cut in.
        return Strip(segments, len(chars)).crop(0, self.size.width).simplify()

    # -- the still picture ------------------------------------------------------------------------

    def _build(self, diagram: Diagram) -> None:
        """The figures changed (at most 8 times a second): boxes on the cached arrows; only the
        rows that differ from the last build get a new strip."""
        self._stale = False
        self._overlay = None
        width, height = max(self.size.width, diagram.width), diagram.height + 1
        key = (self._layouts, width, height, self.selected, self.view.traced is False)
        if self._edges is None or self._edges[0] != key:
            self._chars = [[" "] * width for _ in range(height)]
            self._kinds = [[""] * width for _ in range(height)]
            self._draw_edges(diagram)
            self._draw_legend(width, height)
            self._edges = (key, [r[:] for r in self._chars], [r[:] for r in self._kinds])
            self._strips = {}
        old_chars, old_kinds = self._chars, self._kinds
        self._chars = [r[:] for r in self._edges[1]]
        self._kinds = [r[:] for r in self._edges[2]]
        for node, box in diagram.picture.boxes.items():
            self._draw_box(box, node)
        if len(old_chars) != height:
            self._strips = {}
        for y in list(self._strips):
            if y >= height or self._chars[y] != old_chars[y] or self._kinds[y] != old_kinds[y]:
                del self._strips[y]

    def _draw_legend(self, width: int, height: int) -> None:
        long = sum(len(t) + 3 for t, _ in LEGEND) <= width
        x = 1
        for (text, kind), brief in zip(LEGEND, LEGEND_BRIEF, strict=True):
            text = text if long else brief
            self._put((x, height - 1), text, kind, width)
            x += len(text) + (3 if long else 2)

    def _put(self, cell: Cell, text: str, kind: str, room: int) -> None:
        x, y = cell
        if not 0 <= y < len(self._chars):
            return
        row, kinds = self._chars[y], self._kinds[y]
        start, end = max(0, x), min(len(row), x + min(len(text), max(0, room)))
        if start < end:  # one slice per run: boxes are redrawn 8 times a second
            row[start:end] = text[start - x : end - x]
            kinds[start:end] = [kind] * (end - start)

    def _draw_edges(self, diagram: Diagram) -> None:
        bits: dict[Cell, int] = {}
        dashed: set[Cell] = set()
        inferred = self.view.traced is False
        for (start, _end), cells in diagram.picture.routes.items():
            edge = diagram.picture.kinds[(start, _end)]
            for i, cell in enumerate(cells):
                here = bits.get(cell, 0)
                for j in (i - 1, i + 1):
                    if 0 <= j < len(cells):
                        here |= _direction(cell, cells[j])
                if i == 0:
                    here |= W
                bits[cell] = here
                # hops the trace does not report are inferred, and so is all routing without a trace
                if edge.inferred or (inferred and edge.kind == "binding"):
                    dashed.add(cell)
        for cell, b in bits.items():
            is_dashed = cell in dashed
            char = (DASHED.get(b) if is_dashed else None) or LINES.get(b, "┼")
            self._put(cell, char, "edge-inferred" if is_dashed else "edge", 1)
        for (source, target), cells in diagram.picture.routes.items():
            self._put(cells[-1], "▶", "edge", 1)
            if self.selected == f"b:{source}>{target}":  # the selected binding: its arrow stands out
                for cell in cells:
                    self._put(cell, self._chars[cell[1]][cell[0]], "picked", 1)

    def _draw_box(self, box: Box, node: str) -> None:
        kind, name = node.split(":", 1)
        inner = box.width - 2
        figures, details, style = self._box_text(kind, name)
        title = list(box.title)
        if kind == "g" and name == self.selected_group:
            title[0] = "▸" + title[0][1:]
        if self.selected == node:
            style = "picked"
        # the title row carries the first figures that fit after the name (and the buttons)
        buttons = GROUP_CONTROLS if kind == "g" else 0
        room = inner - (0 if box.controls_row else buttons)
        fit = next((f for f in figures if len(title[-1]) + 2 + len(f) <= room), "")
        if fit:
            title[-1] = f"{title[-1]}  {fit}"
        # figures may be shortened or cut; names and notes never are (the layout made room)
        rooms = [inner - (buttons if i + 1 == box.controls_row else 0) for i in range(box.detail_rows)]
        shown = [_cut(_first_fit(v, r), r) for v, r in zip(details[: box.detail_rows], rooms, strict=False)]
        rows = [*title, *shown, *[""] * (box.detail_rows - len(shown)), *box.notes]
        for i in range(box.height):
            text = rows[i] if i < len(rows) else ""
            self._put((box.x, box.y + i), f" {text}".ljust(box.width), style, box.width)
        if kind == "g":  # click − or + to scale the group
            minus, plus = control_cells(box)
            self._put((minus, box.controls_y), "−", "control", 1)
            self._put((plus, box.controls_y), "+", "control", 1)
        for consumer, cell in box.cells:
            text, cell_style = self._cell_text(consumer)
            if self.selected == f"c:{consumer}":
                cell_style = "picked"
            self._put(cell, text.ljust(CELL_WIDTH - 1), cell_style, CELL_WIDTH - 1)
        if box.hidden:
            self._put((box.x + 1, box.more_y), f"+{box.hidden} more (click)", "dim", inner)

    def _cell_text(self, consumer: str) -> tuple[str, str]:
        view = self.view
        tag = consumer.rsplit("-", 1)[-1]
        if consumer in view.fallen:
            return f"{tag}✝", "fallen"
        fig = view.tally.consumers.get(consumer)
        if fig is None:
            return f"{tag}✓0", "consumer"
        return f"{tag}✓{fig.acked}{'●' if fig.in_flight else ''}", "consumer"

    def _box_text(self, kind: str, name: str) -> tuple[list[str], list[list[str]], str]:
        """Figures for the title row (the first that fits), the detail rows, and the box's style."""
        view, tally = self.view, self.view.tally
        if kind == "p":
            if name == MANUAL:
                return [], [["m: publish", "m"]], "producer"
            stopped = view.stopped(name)
            rate = view.rates.get(name, 0)
            key = view.last_key.get(name, "")
            keys = view.producer_detail(name) or ([f"key {key}", key] if key else [""])
            if stopped:  # a held producer says so first, on the title row or else before its key
                return (
                    [stopped],
                    [[f"{stopped} · {k}" if k else stopped for k in keys] + [stopped]],
                    "producer",
                )
            return [f"{rate:g} msg/s", f"{rate:g}/s"], [keys], "producer"
        if kind == "x":
            spec = view.scenario.exchange(name)
            kind_word = spec.type if spec else "direct, default"
            how = " · inferred" if view.traced is False else ""
            brief = spec.type if spec else "default"
            variants = [f"{kind_word} exchange{how}", f"{kind_word}{how}", f"{brief}{how}", brief]
            return [], [variants], "exchange"
        if kind == "q":
            depth = tally.depth.get(name)
            ready = "?" if depth is None or depth.ready is None else str(depth.ready)
            unacked = "?" if depth is None else str(depth.unacked)
            cons = "" if depth is None or depth.consumers is None else f" · cons {depth.consumers}"
            routed = tally.routed[name]
            return (
                [f"routed {routed}", f"→{routed}"],
                [[f"ready {ready} · unacked {unacked}{cons}", f"ready {ready} · unacked {unacked}",
                  f"rdy {ready} · unack {unacked}"]],
                "queue",
            )  # fmt: skip
        return self._group_text(name)

    def _group_text(self, group: str) -> tuple[list[str], list[list[str]], str]:
        view, tally = self.view, self.view.tally
        members = [c for c in view.roster.get(group, [])]
        figs = [f for c, f in tally.consumers.items() if f.group == group and c in members]
        prefetch = view.prefetch.get(group, 0)
        alive = len(members)
        held = sum(f.in_flight for f in figs)
        head = [
            f"{alive} cons · prefetch {prefetch or '∞'}",
            f"{alive} cons · pf {prefetch or '∞'}",
            f"{alive} cons",
        ]
        style = "selected" if group == self.selected_group else "consumer"
        fallen = [c for c in view.fallen if c.rsplit("-", 1)[0] == group]
        if not members and fallen:
            return head, [[f"✝ {fallen[0]} {view.fallen[fallen[0]]}"]], "fallen"
        latest = tally.consumers.get(view.last_acked_by.get(group, ""))
        detail = ""
        if latest is not None and latest.last_result:
            if latest.last_result.startswith("stored") and latest.last_message in view.previews:
                detail = f"stored {view.previews[latest.last_message]}"  # what this log server wrote
            else:
                detail = f"{_short(latest.last_message)} {latest.last_work_ms:.0f} ms: {latest.last_result}"
        acked = sum(f.acked for f in figs)
        busy = f" · {held} in hand" if held else ""
        return head, [[f"✓ {acked}{busy} · {detail}" if detail else f"✓ {acked}{busy}"]], style

    # -- tokens -----------------------------------------------------------------------------------

    def _place_tokens(self, diagram: Diagram) -> Overlay:
        placed: Overlay = {}
        waiting: dict[Station, int] = {}
        for token in self.view.tokens.tokens:
            cell = self._token_cell(diagram, token, waiting)
            if cell is None:
                continue
            glyph = GLYPHS[token.kind]
            kind = "token" if token.kind == "message" else f"token-{token.kind}"
            if token.leg is None and token.ending is not None and not token.pending:
                glyph = ENDINGS[token.ending]
                kind = "ok" if token.ending == "acked" else "bad"
                if token.flash > FLASH_FRAMES // 2:
                    kind = "dim"
            placed.setdefault(cell[1], {})[cell[0]] = (glyph, kind)
        return placed

    def _token_cell(self, diagram: Diagram, token: Token, waiting: dict[Station, int]) -> Cell | None:
        start, end, progress = self.view.tokens.position(token)
        if end is not None:
            path = diagram.path(start, end)
            if path:
                return path[min(len(path) - 1, int(progress * len(path)))]
        box = diagram.box(start)
        if box is None:
            return None
        rank = waiting.get(start, 0)
        waiting[start] = rank + 1
        if start[0] == "p":
            return (box.right[0] + rank, box.y)
        spot = diagram.spot(start)
        if spot is not None and box.cells:
            # a consumer's cell says itself what it holds (●): only a finished job flashes there
            return (spot[0] + CELL_WIDTH - 2, spot[1]) if token.ending is not None else None
        # a queue of waiting tokens stops short of the box to its left: no token over its words
        row, x = box.y + 1, box.x - 3 - rank
        left = (
            b.x + b.width
            for b in diagram.picture.boxes.values()
            if b.x < box.x and b.y <= row < b.y + b.height
        )
        return (x, row) if x > max(left, default=0) else None


def _with_tokens(strip: Strip, tokens: dict[int, tuple[str, str]], style: Callable[[str], Style]) -> Strip:
    """A row's background strip with single-cell tokens put over it (its segments cut, not rebuilt)."""
    width = strip.cell_length
    cells = sorted(x for x in tokens if 0 <= x < width)
    cuts = [c for x in cells for c in (x, x + 1)] + [width]
    pieces = iter(Segment.divide(list(strip), cuts))  # rich's: no Strip per piece
    segments: list[Segment] = [*next(pieces)]
    for x in cells:
        next(pieces)  # the background under the token
        glyph, kind = tokens[x]
        segments.append(Segment(glyph, style(kind)))
        segments.extend(next(pieces, ()))
    return Strip(segments, width).simplify()


def _first_fit(variants: list[str], room: int) -> str:
    """The first variant (longest first) that fits, else the shortest."""
    return next((v for v in variants if len(v) <= room), variants[-1])


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: max(0, room - 1)] + "…"


def _direction(a: Cell, b: Cell) -> int:
    (ax, ay), (bx, by) = a, b
    if bx > ax:
        return E
    if bx < ax:
        return W
    return S if by > ay else N


def _short(message_id: str) -> str:
    return f"#{message_id.rsplit('.', 1)[-1]}" if message_id else ""
