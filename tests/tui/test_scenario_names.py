"""A scenario whose name is a dotted AMQP handle gets its tab like any other."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import TabbedContent

from broker_sim.domain.scenario_file import parse_scenario
from broker_sim.settings import Settings
from broker_sim.tui.app import make_app
from broker_sim.tui.ids import widget_id
from tests.support import SHORT_SCENARIO


async def test_dotted_and_underscored_names_start_and_show_their_tab() -> None:
    names = ["shop.orders", "shop_orders", "shop-orders"]
    scenarios = [parse_scenario(SHORT_SCENARIO.replace('name = "short"', f'name = "{n}"', 1)) for n in names]
    settings = Settings(
        url="amqp://guest:guest@localhost:5672/", url_source="test", data_dir=Path("/nonexistent")
    )
    app = make_app(settings, scenarios=scenarios, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        for name in names:
            app.query_one(TabbedContent).active = widget_id("pane-", name)
            await pilot.pause()
            assert app.active_tab is not None and app.active_tab.scenario.name == name
    assert len({widget_id("pane-", n) for n in names}) == len(names)  # the escape is one-to-one
