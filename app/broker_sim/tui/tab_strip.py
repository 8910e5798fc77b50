"""The tab bar: every tab's key and name in view at any width, on as many rows as it takes.

Textual's own tab bar is one row that scrolls sideways: at 80 columns, with ten tabs and more to
come, a newcomer saw "uting  4 Topic …" and never learnt that a Work queue tab existed. This bar
wraps between tabs (never inside a name) and each label is a link that shows its tab.
"""

from __future__ import annotations

from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget

GAP = 2
"""Blank cells between two labels."""


class TabStrip(Widget):
    """Labels ("1 Work queue") of every tab, the shown one highlighted, wrapped to the width."""

    DEFAULT_CSS = """
    TabStrip { height: auto; width: 1fr; padding: 0 1; }
    """

    def __init__(self, labels: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.labels = labels
        self.active = 0

    def show(self, index: int) -> None:
        """Highlight the tab shown now."""
        if index != self.active:
            self.active = index
            self.refresh()

    def rows(self, width: int) -> list[list[int]]:
        """The labels' indexes on each row, packed left to right without cutting one."""
        rows: list[list[int]] = [[]]
        used = 0
        for i, label in enumerate(self.labels):
            need = len(label) + (GAP if rows[-1] else 0)
            if rows[-1] and used + need > width:
                rows.append([])
                used, need = 0, len(label)
            rows[-1].append(i)
            used += need
        return rows

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """As many rows as the labels need at this width."""
        return len(self.rows(width))

    def render(self) -> Content:
        """Each label a link to its tab (``app.show_tab``); the shown one in reverse."""
        lines = []
        for row in self.rows(self.content_region.width or self.size.width):
            parts = []
            for i in row:
                style = "reverse bold" if i == self.active else "$text-accent"
                parts.append(Content.styled(self.labels[i], f"{style} @click=app.show_tab({i})"))
            lines.append(Content(" " * GAP).join(parts))
        return Content("\n").join(lines)
