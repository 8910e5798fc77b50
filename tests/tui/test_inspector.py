"""The inspector: select with the arrow keys (reading order) or a click; its actions.

Selection and the panel are checked on a recorded event stream (no engine); the actions that
change the broker (click + on a group, the panel's buttons) on the real broker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Button, Select, Static, TabbedContent

from broker_sim.broker.handle import EmbeddedHandle
from broker_sim.domain.events import Purged, QueueDepth
from broker_sim.settings import Settings
from broker_sim.tui.app import BrokerSimApp
from broker_sim.tui.diagram import control_cells
from broker_sim.tui.inspector import ConfirmPurge, StationPanel
from broker_sim.tui.pattern_tab import PatternTab
from broker_sim.tui.publish_form import PublishForm
from tests.tui.harness import app_on, until_screen
from tests.tui.recorded import STORIES
from tests.tui.test_snapshots import recorded_app, story


async def on_tab(app: BrokerSimApp, name: str) -> PatternTab:
    app.query_one(TabbedContent).active = f"pane-{name}"
    return next(t for t in app.tabs if t.scenario.name == name)


def panel_text(tab: PatternTab) -> str:
    return "\n".join(
        str(tab.query_one(f"#{part}", Static).content) for part in ("inspection-heading", "inspection")
    )


@pytest.mark.parametrize("size", [(80, 24), (160, 44)])
async def test_arrow_keys_walk_every_station_in_reading_order(size: tuple[int, int]) -> None:
    app = recorded_app()
    async with app.run_test(size=size) as pilot:
        tab = await on_tab(app, "routing")
        await pilot.pause()
        order = tab.canvas.diagram.selectable()
        assert order[:3] == ["p:app", "p:you", "x:direct-logs"]
        assert "b:x:direct-logs>q:disk-server" in order, "a binding can be selected"
        assert order.index("b:x:direct-logs>q:disk-server") == order.index("q:disk-server") - 1
        seen = []
        for _ in order:
            await pilot.press("right")
            seen.append(tab.inspecting)
        assert seen == order
        assert tab.query_one(StationPanel).has_class("-open")
        await pilot.press("left")
        assert tab.inspecting == order[-2]
        assert "consumer group disk" in panel_text(tab) or tab.inspecting.startswith("g:")
        await pilot.press("escape")
        assert tab.inspecting is None and tab.canvas.selected is None


async def test_the_panel_says_where_each_figure_comes_from() -> None:
    app = recorded_app()
    async with app.run_test(size=(160, 44)) as pilot:
        await story("headers")(pilot)
        tab = next(t for t in app.tabs if t.scenario.name == "headers")
        tab.pick("q:pdf-reports")
        await pilot.pause()
        text = panel_text(tab)
        assert "queue pdf-reports" in text
        assert "documents: all: format=pdf, type=report  scenario" in text
        assert f"routed here  {tab.view.tally.routed['pdf-reports']}  broker" in text
        assert "unacked" in text and "engine" in text
        assert "latest messages" in text and "pdf" in text  # the routed message's key or headers
        tab.pick("b:x:documents>q:anything-urgent")
        await pilot.pause()
        text = panel_text(tab)
        assert "x-match        any  scenario" in text and "priority     'high'  scenario" in text


@pytest.mark.parametrize("name", sorted(STORIES))
async def test_a_click_selects_the_station_under_the_mouse(name: str) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await story(name)(pilot)
        tab = next(t for t in app.tabs if t.scenario.name == name)
        for node, box in tab.canvas.diagram.picture.boxes.items():
            tab.close_inspector()
            await pilot.click(tab.canvas, offset=(box.x + 1, box.y))
            assert tab.inspecting == node, f"clicking {node}'s title selected {tab.inspecting}"
            for consumer, (cx, cy) in box.cells:
                await pilot.click(tab.canvas, offset=(cx, cy))
                assert tab.inspecting == f"c:{consumer}"


async def test_the_panels_publish_button_opens_the_form_on_that_exchange() -> None:
    app = recorded_app()
    async with app.run_test(size=(160, 44)) as pilot:
        tab = await on_tab(app, "topic")
        await pilot.pause()
        tab.pick("x:topic-logs")
        await pilot.pause()
        button = next(b for b in tab.query(Button) if "publish here" in str(b.label))
        await pilot.click(button)
        await until_screen(pilot, lambda: isinstance(app.screen, PublishForm), "the publish form")
        assert app.screen.query_one("#exchange", Select).value == "topic-logs"


def consumers_at_broker(watcher_events: Callable[[], list[object]], n: int) -> Callable[[], bool]:
    return lambda: any(
        isinstance(e, QueueDepth) and e.queue == "image-jobs" and e.consumers == n
        for e in watcher_events()[-20:]
    )


async def test_clicking_plus_and_the_panels_minus_scale_the_group_at_the_broker(settings: Settings) -> None:
    async with app_on(settings, "work-queue") as (_app, tab, w, pilot):
        await w.until(consumers_at_broker(lambda: w.events, 3), "the broker counts 3 consumers")
        await w.until(
            lambda: tab.controller.engine is not None and tab.controller.engine.connected,
            "the engine connected",
        )
        box = tab.canvas.diagram.picture.boxes["g:worker"]
        _, plus = control_cells(box)
        await pilot.click(tab.canvas, offset=(plus, box.y))
        await w.until(
            consumers_at_broker(lambda: w.events, 4), "the broker counts 4 consumers after the click"
        )
        await until_screen(pilot, lambda: len(tab.view.roster["worker"]) == 4, "4 workers on screen")
        tab.pick("g:worker")
        await pilot.pause()
        assert re.search(r"\nconsumers +4  engine", panel_text(tab))
        minus = next(b for b in tab.query(Button) if "− consumer" in str(b.label))
        await pilot.click(minus)
        await w.until(consumers_at_broker(lambda: w.events, 3), "the broker counts 3 after the panel's −")
        await until_screen(
            pilot, lambda: bool(re.search(r"\nconsumers +3  engine", panel_text(tab))), "the panel counts 3"
        )


async def test_the_queue_panels_purge_asks_first_then_empties_the_queue_at_the_broker(
    settings: Settings,
) -> None:
    async with app_on(settings, "work-queue") as (app, tab, w, pilot):
        await w.until(
            lambda: tab.controller.engine is not None and tab.controller.engine.connected, "connected"
        )
        engine = tab.controller.engine
        assert engine is not None
        await engine.scale("worker", 0)  # nobody consumes: the jobs wait in the queue
        await w.until(
            lambda: any(isinstance(e, QueueDepth) and (e.ready or 0) >= 3 for e in w.events[-10:]),
            "jobs waiting in image-jobs",
        )
        engine.pause()
        await w.until(lambda: w.tally.confirmed == w.tally.published, "every publish confirmed")
        tab.pick("q:image-jobs")
        await pilot.pause()

        await pilot.press("e")  # the key asks too; Enter answers Cancel, which has the focus
        await until_screen(pilot, lambda: isinstance(app.screen, ConfirmPurge), "the purge question")
        await pilot.press("enter")
        await until_screen(pilot, lambda: not isinstance(app.screen, ConfirmPurge), "the question closed")
        assert not w.of(Purged), "Enter kept the messages"

        button = next(b for b in tab.query(Button) if "purge" in str(b.label))
        await pilot.click(button)
        await until_screen(pilot, lambda: isinstance(app.screen, ConfirmPurge), "the purge question")
        await pilot.press("y")
        await w.until(lambda: bool(w.of(Purged)), "the engine purged the queue")
        purged = w.of(Purged)[0]
        # every job not done: the workers finished some before they left, and handed back the
        # ones they had not started (delivered, then back in the queue)
        assert (purged.queue, purged.messages) == ("image-jobs", w.tally.published - w.tally.acked)
        assert purged.messages >= 3
        after = w.events.index(purged)
        await w.until(
            lambda: any(isinstance(e, QueueDepth) and e.ready == 0 for e in w.events[after:]),
            "the broker holds none of them any more",
        )
        await until_screen(
            pilot,
            lambda: bool(
                re.search(
                    rf"\npurged +{purged.messages} \(dropped on purpose, not lost\)  engine", panel_text(tab)
                )
            ),
            "the panel counts them purged",
        )
        assert tab.view.tally.lost == 0


async def test_the_panel_shows_the_broker_side_from_the_embedded_brokers_management_api(
    tmp_path: Path,
) -> None:
    broker = EmbeddedHandle(tmp_path / "embedded")
    await broker.start()
    settings = Settings(url=broker.url, url_source="test", data_dir=tmp_path)
    async with app_on(settings, "work-queue", broker=broker) as (_app, tab, w, pilot):
        await w.until(consumers_at_broker(lambda: w.events, 3), "the broker counts 3 consumers")
        tab.pick("q:image-jobs")
        await until_screen(
            pilot, lambda: "at the broker  3 consumers  broker" in panel_text(tab), "the API's consumers"
        )
        text = panel_text(tab)
        assert len(re.findall(r"\n  channel \d+ +prefetch 1 · manual ack  broker", text)) == 3, text
        assert re.search(r"\nrates +none: broker-sim's embedded broker keeps none  broker", text)
        assert re.search(r"\n← \(default\) +key \S+image-jobs  broker", text), "the implicit binding"


async def test_without_a_management_api_the_panel_says_why_in_one_line(settings: Settings) -> None:
    async with app_on(settings, "work-queue") as (app, tab, w, pilot):
        await w.until(consumers_at_broker(lambda: w.events, 3), "the broker counts 3 consumers")
        assert app.broker is not None and app.broker.management_url is None
        tab.pick("q:image-jobs")
        await until_screen(pilot, lambda: "management API" in panel_text(tab), "the API's line")
        line = next(x for x in panel_text(tab).splitlines() if x.startswith("management API"))
        assert re.fullmatch(
            r"management API +not available \(none answers at http://127\.0\.0\.1:15672/ .*\)  broker", line
        )
        assert "Traceback" not in panel_text(tab)
