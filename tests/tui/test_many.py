"""Many of anything: 100 consumers in a group, 20 queues on one exchange.

The group becomes a grid of consumer cells with a "+N more" row that opens the inspector on the
whole group; twenty queues make the picture taller than the screen, and the tab scrolls with a
visible scrollbar instead of cutting anything.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import TabbedContent

from broker_sim.domain.events import ConsumerUp
from broker_sim.domain.scenario import (
    BindingSpec,
    ConsumerGroupSpec,
    ExchangeSpec,
    ProducerSpec,
    QueueSpec,
    Scenario,
)
from broker_sim.settings import Settings
from broker_sim.tui.app import BrokerSimApp, make_app
from broker_sim.tui.pattern_tab import PatternTab
from tests.tui.harness import start_work_done

QUEUES = 20
CROWD = 100

MANY = Scenario(
    name="many",
    title="Many",
    exchanges=(ExchangeSpec("events", "fanout"),),
    queues=tuple(QueueSpec(f"audit-{i:02d}") for i in range(QUEUES)),
    bindings=tuple(BindingSpec("events", f"audit-{i:02d}") for i in range(QUEUES)),
    producers=(ProducerSpec("emitter", "events"),),
    consumers=(
        ConsumerGroupSpec("crowd", "audit-00", count=CROWD),
        *(ConsumerGroupSpec(f"reader-{i:02d}", f"audit-{i:02d}") for i in range(1, QUEUES)),
    ),
)


def many_app() -> BrokerSimApp:
    settings = Settings(
        url="amqp://guest:guest@localhost:5672/", url_source="test", data_dir=Path("/nonexistent")
    )
    return make_app(settings, scenarios=[MANY], live=False)


async def crowd_up(pilot: Pilot[None]) -> PatternTab:
    await start_work_done(pilot)
    app = pilot.app
    assert isinstance(app, BrokerSimApp)
    app.query_one(TabbedContent).active = "pane-many"
    await pilot.pause()
    tab = next(t for t in app.tabs if t.scenario.name == "many")
    events = [ConsumerUp(f"crowd-{i}", "crowd", "audit-00", 1, "manual") for i in range(1, CROWD + 1)]
    events += [
        ConsumerUp(f"reader-{i:02d}-1", f"reader-{i:02d}", f"audit-{i:02d}", 1, "manual")
        for i in range(1, QUEUES)
    ]
    tab.feed(events)
    await pilot.pause()
    return tab


async def test_a_hundred_consumers_show_as_cells_and_the_rest_is_counted_and_inspectable() -> None:
    app = many_app()
    async with app.run_test(size=(80, 24)) as pilot:
        tab = await crowd_up(pilot)
        box = tab.canvas.diagram.picture.boxes["g:crowd"]
        assert box.cells and box.hidden == CROWD - len(box.cells)
        text = "\n".join(tab.canvas.render_line(y).text for y in range(box.y, box.y + box.height))
        assert f"+{box.hidden} more" in text
        tab.scroll_to(y=box.y, animate=False)  # the picture is taller than the screen: it scrolls
        await pilot.pause()
        await pilot.click(tab.canvas, offset=(box.x + 2, box.more_y))
        assert tab.inspecting == "g:crowd", "the +N more row opens the group in the inspector"
        panel = tab.query_one("#inspection").render()
        assert "crowd-100" in str(panel), "the inspector lists every consumer, the hidden ones too"


def test_twenty_queues_and_a_hundred_consumers(snap_compare: object) -> None:
    async def run(pilot: Pilot[None]) -> None:
        await crowd_up(pilot)

    assert snap_compare(many_app(), terminal_size=(120, 40), run_before=run)  # type: ignore[operator]
