"""Pilot tests of the Confirms tab and the RPC tab's direct reply-to client, on the real broker."""

from __future__ import annotations

import re

from textual.widgets import TabbedContent

from broker_sim.domain.scenario import DIRECT_REPLY_TO
from broker_sim.settings import Settings
from broker_sim.tui.pattern_tab import PatternTab
from tests.tui.harness import app_on, until_screen

PRODUCERS = ("one-by-one", "windowed", "async")


def canvas_text(tab: PatternTab) -> str:
    return "\n".join(tab.canvas.render_line(y).text for y in range(tab.canvas.size.height))


def shown_rates(tab: PatternTab) -> list[int]:
    """The confirms per second the producers' boxes show, top to bottom."""
    return [int(n) for n in re.findall(r"✓(\d+)/s", canvas_text(tab))]


async def test_c_opens_the_confirms_tab_whose_rates_are_measured_not_asked(settings: Settings) -> None:
    async with app_on(settings, "confirms") as (app, tab, w, pilot):
        panes = app.query_one(TabbedContent)
        await pilot.press("1")
        await pilot.press("c")  # digits are taken: the tenth tab has a letter, shown on its label
        assert panes.active == "pane-confirms"
        await w.until(
            lambda: all(w.tally.producers[p].confirmed >= 20 for p in PRODUCERS), "each producer confirmed 20"
        )
        await until_screen(
            pilot,
            lambda: len(shown_rates(tab)) == 3 and all(shown_rates(tab)),
            "three measured rates above 0",
        )
        text = canvas_text(tab)
        assert "1 by 1" in text and "win 50" in text and "≤100" in text, text
        # the tab counts as the engine does: one awaited at a time, never more than a window
        mine = tab.view.tally.producers
        assert mine["one-by-one"].max_outstanding == 1
        assert mine["windowed"].max_outstanding == 50  # a window goes out whole
        assert mine["async"].max_outstanding <= 100
        await pilot.press("space")  # paused: they still ask for 100/s, but nothing is confirmed
        await until_screen(pilot, lambda: shown_rates(tab) == [0, 0, 0], "every rate back to 0", at_least=20)
        assert all(tab.view.rates[p] == 100 for p in PRODUCERS)


async def test_the_direct_reply_to_client_shows_the_answers_it_matched(settings: Settings) -> None:
    async with app_on(settings, "rpc") as (_app, tab, w, pilot):
        await w.until(lambda: w.tally.acked_per_queue[DIRECT_REPLY_TO] >= 3, "three direct answers matched")
        await pilot.press("space")
        await w.until(
            lambda: w.tally.unanswered == 0 and w.tally.confirmed == w.tally.published,
            "every request answered",
        )
        answers = w.tally.acked_per_queue[DIRECT_REPLY_TO]
        box = re.compile(rf"(?:{answers} answers|↩{answers})\b")
        await until_screen(pilot, lambda: bool(box.search(canvas_text(tab))), f"{answers} answers on its box")
        assert "last " in canvas_text(tab) or " ms" in canvas_text(tab)  # the round trip it measured
