"""The tab bar at 80 columns: every tab's key and name in view, none cut, a click shows the tab."""

from __future__ import annotations

import pytest
from textual.widgets import TabbedContent

from tests.tui.test_snapshots import recorded_app


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_tab_is_named_in_full_on_screen_and_a_click_shows_it(size: tuple[int, int]) -> None:
    app = recorded_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        strip = app.strip
        area = strip.content_region
        rows = strip.render().plain.split("\n")
        assert area.right <= size[0] and len(rows) == strip.region.height
        assert all(len(row) <= area.width for row in rows), f"a row is wider than the screen: {rows}"
        for label in strip.labels:
            assert any(label in row for row in rows), f"{label!r} is not on screen at {size}: {rows}"
        assert len(rows) == (2 if size[0] == 80 else 1), "wrapped onto as few rows as the width needs"
        # a click on "6 Retry", wherever it landed, shows the Retry tab
        label = next(label for label in strip.labels if label.endswith("Retry"))
        y = next(i for i, row in enumerate(rows) if label in row)
        await pilot.click(offset=(area.x + rows[y].index(label) + 1, area.y + y))
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "pane-retry"
        await pilot.press("9")
        await pilot.pause()
        assert strip.active == 8, "a key moves the highlight too"
