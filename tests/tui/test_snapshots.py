"""Snapshots of every tab, fed by a recorded event stream: fixed size, no engine, no clock.

The stream (tests/tui/recorded.py) is test data for the view: each chunk of events is fed into
the tab, then the tokens advance a fixed number of frames, so the picture is mid-flight and the
same on every run. Update with ``uv run pytest tests/tui --snapshot-update`` after a deliberate
change, and look at the new SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import TabbedContent

from broker_sim.broker.handle import BrokerHandle
from broker_sim.broker.station_reading import BrokerReading
from broker_sim.domain.events import Purged, QueueDepth
from broker_sim.domain.scenario_file import load_scenarios
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.settings import Settings
from broker_sim.tui.app import BrokerSimApp, make_app
from tests.tui.harness import start_work_done
from tests.tui.recorded import STORIES

SIZE = (160, 44)


def recorded_app() -> BrokerSimApp:
    """The app with the built-in scenarios and no engines (``live=False``)."""
    settings = Settings(
        url="amqp://guest:guest@localhost:5672/", url_source="test", data_dir=Path("/nonexistent")
    )
    return make_app(settings, scenarios=load_scenarios(builtin_scenarios_dir()), live=False)


def story(name: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Show the tab, feed it its recorded story chunk by chunk, stop mid-flight."""

    async def play(pilot: Pilot[None]) -> None:
        await start_work_done(pilot)
        app = pilot.app
        assert isinstance(app, BrokerSimApp)
        app.query_one(TabbedContent).active = f"pane-{name}"
        await pilot.pause()
        tab = next(t for t in app.tabs if t.scenario.name == name)
        recorded = STORIES[name]()
        for i, (events, frames) in enumerate(recorded.chunks):
            tab.feed(events)
            tab.view.tokens.step(frames)
            if i in recorded.seconds:
                tab.view.sample_rates()
        tab.feed([])
        await pilot.pause()

    return play


@pytest.mark.parametrize("name", sorted(STORIES))
def test_tab_mid_flight(name: str, snap_compare: object) -> None:
    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=story(name))  # type: ignore[operator]


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", sorted(STORIES))
def test_tab_at_every_size(name: str, size: tuple[int, int], snap_compare: object) -> None:
    """Each tab's whole diagram, every name in full, from 80x24 up."""
    assert snap_compare(recorded_app(), terminal_size=size, run_before=story(name))  # type: ignore[operator]


@pytest.mark.parametrize("name", ["retry", "overflow", "priority", "rpc", "confirms"])
def test_the_pattern_tabs_of_issue_13_at_80_columns(name: str, snap_compare: object) -> None:
    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=story(name))  # type: ignore[operator]


def test_help_screen(snap_compare: object) -> None:
    assert snap_compare(  # type: ignore[operator]
        recorded_app(), terminal_size=SIZE, press=["question_mark"], run_before=start_work_done
    )


def test_publish_form_refuses_bad_headers(snap_compare: object) -> None:
    async def type_bad_headers(pilot: Pilot[None]) -> None:
        await start_work_done(pilot)
        await pilot.press("m")
        await pilot.pause()
        await pilot.click("#headers")
        await pilot.press(*"format", "enter")
        await pilot.pause()

    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=type_bad_headers)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("size", "station"),
    [((80, 24), "q:console-server"), ((160, 44), "g:console")],
    ids=["80x24-queue", "160x44-group"],
)
def test_inspector_open(size: tuple[int, int], station: str, snap_compare: object) -> None:
    """The inspector beside (wide) or below (narrow) the diagram, which stays whole."""

    async def inspect(pilot: Pilot[None]) -> None:
        await story("routing")(pilot)
        app = pilot.app
        assert isinstance(app, BrokerSimApp)
        next(t for t in app.tabs if t.scenario.name == "routing").pick(station)
        await pilot.pause()

    assert snap_compare(recorded_app(), terminal_size=size, run_before=inspect)  # type: ignore[operator]


def work_queue_api_reading() -> BrokerReading:
    """What RabbitMQ's management API said about image-jobs once (test data, in scenario names)."""
    consumer = {"ack_required": True, "prefetch_count": 1}
    return BrokerReading(
        queue={
            "messages_ready": 0,
            "messages_unacknowledged": 2,
            "consumers": 2,
            "arguments": {"x-queue-type": "classic"},
            "message_stats": {
                "publish_details": {"rate": 2.4},
                "deliver_get_details": {"rate": 2.2},
                "ack_details": {"rate": 2.0},
            },
        },
        consumers=tuple({**consumer, "channel_details": {"number": n}} for n in (1, 3)),
        bindings=(
            {
                "source": "",
                "destination": "image-jobs",
                "destination_type": "queue",
                "routing_key": "image-jobs",
            },
        ),
    )


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_inspector_on_a_queue_with_purge_and_rates(size: tuple[int, int], snap_compare: object) -> None:
    """A queue's panel: its purge button, purged count, rates from the engine and from the broker."""

    async def inspect(pilot: Pilot[None]) -> None:
        await start_work_done(pilot)
        app = pilot.app
        assert isinstance(app, BrokerSimApp)
        app.query_one(TabbedContent).active = "pane-work-queue"
        await pilot.pause()
        tab = next(t for t in app.tabs if t.scenario.name == "work-queue")
        for events, frames in STORIES["work-queue"]().chunks:  # a chunk a second, for the rates
            tab.feed(events)
            tab.view.tokens.step(frames)
            tab.view.sample_rates()
        tab.feed([Purged("image-jobs", 3), QueueDepth("image-jobs", 0, 2, 2)])
        tab.controller.broker = BrokerHandle(
            "amqp://guest:guest@localhost:5672/",
            management_url="http://localhost:15672/",
            management_missing="",
        )
        tab.broker_feed.remember("q:image-jobs", work_queue_api_reading())
        tab.pick("q:image-jobs")
        await pilot.pause()

    assert snap_compare(recorded_app(), terminal_size=size, run_before=inspect)  # type: ignore[operator]
