"""The first frame holds the first tab's widgets only; the others are mounted after it, or at once
when one is shown before its turn."""

from __future__ import annotations

from textual.widgets import TabbedContent

from tests.tui.harness import until_screen
from tests.tui.test_snapshots import recorded_app


async def test_the_first_frame_holds_the_first_tab_and_the_others_follow() -> None:
    app = recorded_app()
    at_first_frame: list[list[bool]] = []
    # registered before the app runs: called after its first refresh, before the app's own
    # after-refresh work (the hidden tabs' mounting among it) starts
    app.call_after_refresh(lambda: at_first_frame.append([t.is_mounted for t in app.tabs]))
    async with app.run_test(size=(120, 40)) as pilot:
        await until_screen(pilot, lambda: bool(at_first_frame), "the first frame")
        assert at_first_frame[0][0], "the first tab is in the first frame"
        assert not any(at_first_frame[0][1:]), f"only the first tab is: {at_first_frame[0]}"
        await until_screen(
            pilot, lambda: all(t.is_mounted for t in app.tabs) and app.durability.is_mounted, "every tab"
        )
        # mounted while hidden: nothing of theirs is on screen, the first tab still is
        assert app.query_one(TabbedContent).active == "pane-work-queue"
        assert all(not t.shown for t in app.tabs[1:])


async def test_a_tab_shown_at_once_shows_its_content() -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("0")  # the last tab, before the app came to it
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "pane-durability"
        assert app.durability.is_mounted and app.durability.region.height > 0
        await pilot.press("5")
        await pilot.pause()
        headers = next(t for t in app.tabs if t.scenario.name == "headers")
        assert headers.shown and headers.canvas.region.height > 0
