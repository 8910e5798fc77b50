"""A line of figures under the diagram that redraws from its words, not from calls.

The tab binds :attr:`FigureLine.words` to one of its own reactives (``data_bind``) and sets that
once per figures tick; a line whose words did not change is not touched at all.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class FigureLine(Static):
    """Words that change as the flow goes (the counters, routed, groups, producers), or a panel
    that shows only while it has something to say (``words`` is None: hidden)."""

    words: reactive[Text | None] = reactive(None, repaint=False)

    def watch_words(self, old: Text | None, new: Text | None) -> None:
        """Show the new words; lay the screen out again only when their number of rows changed."""
        self.display = new is not None
        if new is None:
            return
        rows = old is None or old.plain.count("\n") != new.plain.count("\n")
        self.update(new, layout=rows)
