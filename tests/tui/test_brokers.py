"""Pilot tests of the broker the app runs on: how it is chosen, restarts, and dropped connections.

Tests that restart a broker restart a private one (the app's own embedded broker, or one this
test started), never the shared RabbitMQ.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from broker_sim.broker.handle import BrokerHandle
from broker_sim.domain.events import (
    Acked,
    BrokerRestarted,
    BrokerRestarting,
    ConnectionChanged,
    LinkState,
)
from broker_sim.embedded.launch import EmbeddedBroker
from broker_sim.settings import Settings
from broker_sim.tui.app import BrokerSimApp
from broker_sim.tui.header import BrokerHeader
from broker_sim.tui.outage import Outage
from broker_sim.tui.restart import ConfirmRestart, ManualRestart
from tests.support import Watcher
from tests.tui.harness import app_on, until_screen


def header_text(app: BrokerSimApp, selector: str) -> str:
    return str(app.query_one(BrokerHeader).query_one(selector, Static).content)


def states(w: Watcher) -> list[LinkState]:
    return [e.state for e in w.of(ConnectionChanged)]


async def traffic_after(w: Watcher, event_index: int, what: str) -> None:
    """Wait until a message is acked after the event at ``event_index`` (traffic flows again)."""
    await w.until(lambda: any(isinstance(e, Acked) for e in w.events[event_index:]), what)


async def test_embedded_broker_shows_its_kind_and_data_dir(tmp_path: Path) -> None:
    settings = Settings(broker="embedded", data_dir=tmp_path)
    async with app_on(settings) as (app, _tab, w, pilot):
        await until_screen(pilot, lambda: app.broker is not None, "the broker started", rounds=2000)
        await w.until(lambda: w.tally.acked >= 1, "a job processed on the embedded broker")
        assert "(embedded broker)" in header_text(app, "#broker")
        assert "127.0.0.1" in header_text(app, "#broker") and "****" in header_text(app, "#broker")
        assert str(tmp_path / "embedded") in header_text(app, "#hint")


async def test_auto_falls_back_to_the_embedded_broker_and_says_so(tmp_path: Path) -> None:
    nothing_there = Settings(url="amqp://guest:guest@127.0.0.1:1/", url_source="default", data_dir=tmp_path)
    async with app_on(nothing_there) as (app, tab, w, _pilot):
        await w.until(lambda: tab.view.connected, "connected to the fallback")
        hint = header_text(app, "#hint")
        assert "no RabbitMQ at 127.0.0.1:1 — using broker-sim's embedded broker" in hint
        assert "docker compose up -d" in hint and "--url" in hint
        assert str(tmp_path / "embedded") in hint


async def test_a_url_the_user_named_is_never_replaced(settings: Settings) -> None:
    named = settings.with_(url="amqp://guest:guest@127.0.0.1:1/", url_source="--url")
    async with app_on(named) as (app, tab, w, pilot):
        await w.until(lambda: LinkState.UNREACHABLE in states(w), "the named broker unreachable")
        await until_screen(pilot, lambda: tab.query_one("#trouble").display, "the no-broker panel")
        assert app.broker is not None and app.broker.kind == "RabbitMQ"
        assert not app.query_one(BrokerHeader).query_one("#hint").display


async def test_a_broker_that_cannot_start_is_explained_on_the_panel(tmp_path: Path) -> None:
    from broker_sim.embedded.launch import EmbeddedBroker

    # Another embedded broker holds the data dir's lock, so the app's own cannot start: a
    # sentence on the panel, not a traceback.
    holder = EmbeddedBroker(tmp_path / "embedded")
    await holder.start()
    try:
        async with app_on(Settings(broker="embedded", data_dir=tmp_path)) as (app, tab, _w, pilot):
            await until_screen(pilot, lambda: bool(tab.controller.broker_problem), "the reason", rounds=4000)
            assert tab.query_one("#trouble").display
            assert "Could not start the broker" in str(tab.query_one("#trouble", Static).content)
            assert "no broker" in header_text(app, "#broker")
    finally:
        await holder.stop()


async def test_R_and_X_restart_the_embedded_broker_and_traffic_flows_again(tmp_path: Path) -> None:
    async with app_on(Settings(broker="embedded", data_dir=tmp_path)) as (app, tab, w, pilot):
        await w.until(lambda: w.tally.acked >= 2, "jobs flowing")
        for key in ("R", "X"):  # a clean restart, then a crash (kill -9) and a start
            mark = len(w.events)
            await pilot.press(key)
            await w.until(
                lambda m=mark: any(isinstance(e, BrokerRestarted) for e in w.events[m:]), f"{key}: restarted"
            )
            await w.until(lambda m=mark: LinkState.BACK in states_since(w, m), f"{key}: connection back")
            back = next(
                i
                for i, e in enumerate(w.events)
                if i >= mark and isinstance(e, ConnectionChanged) and e.state == LinkState.BACK
            )
            await traffic_after(w, back, f"{key}: a job processed after the restart")
            await until_screen(pilot, lambda: "back after" in header_text(app, "#link"), "back after N s")
            assert app.broker is not None and app.broker.started_by_us
            assert tab.outage.restart_took is not None


def states_since(w: Watcher, index: int) -> list[LinkState]:
    return [e.state for e in w.events[index:] if isinstance(e, ConnectionChanged)]


async def test_a_broker_nobody_can_restart_asks_the_user_and_waits(settings: Settings) -> None:
    async with app_on(settings, broker=BrokerHandle(settings.url)) as (app, tab, w, pilot):
        await w.until(lambda: tab.view.connected, "connected")
        await pilot.press("R")
        await until_screen(pilot, lambda: isinstance(app.screen, ManualRestart), "the manual-restart dialog")
        assert "waiting" in str(app.screen.query_one("#countdown", Static).content)
        await pilot.press("escape")
        await until_screen(pilot, lambda: not isinstance(app.screen, ManualRestart), "Esc closes it")
        # the dialog closes by itself once the connection went away and came back
        await pilot.press("R")
        await until_screen(pilot, lambda: isinstance(app.screen, ManualRestart), "the dialog again")
        assert tab.controller.engine is not None
        await tab.controller.engine.drop_connection()
        await w.until(lambda: LinkState.BACK in states(w), "back")
        await until_screen(pilot, lambda: not isinstance(app.screen, ManualRestart), "closed by itself")


class SharedTestBroker(BrokerHandle):
    """A broker that asks before a restart, as the machine's RabbitMQ does; really a private one."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        super().__init__(
            broker.url, "RabbitMQ on this machine (a test's)", False, "the test restarts it", True
        )
        self.broker = broker

    async def restart(self, *, crash: bool = False) -> None:
        await self.broker.restart(crash=crash)


@asynccontextmanager
async def asked_to_restart_a_shared_broker(
    tmp_path: Path,
) -> AsyncIterator[tuple[BrokerSimApp, Watcher, Pilot[None]]]:
    """The app on a private broker posing as a shared one, jobs flowing, R pressed: the question up."""
    private = EmbeddedBroker(tmp_path / "private")
    await private.start()
    try:
        settings = Settings(url=private.url, url_source="test", data_dir=tmp_path)
        async with app_on(settings, broker=SharedTestBroker(private)) as (app, _tab, w, pilot):
            await w.until(lambda: w.tally.acked >= 1, "jobs flowing")
            await pilot.press("R")
            await until_screen(pilot, lambda: isinstance(app.screen, ConfirmRestart), "the question")
            yield app, w, pilot
    finally:
        await private.stop()


async def test_a_shared_broker_is_restarted_only_after_the_user_confirms(tmp_path: Path) -> None:
    async with asked_to_restart_a_shared_broker(tmp_path) as (app, w, pilot):
        await pilot.press("n")
        await until_screen(pilot, lambda: not isinstance(app.screen, ConfirmRestart), "cancelled")
        assert not w.of(BrokerRestarted)
        await pilot.press("R")
        await until_screen(pilot, lambda: isinstance(app.screen, ConfirmRestart), "the question again")
        await pilot.press("y")
        await w.until(lambda: bool(w.of(BrokerRestarted)), "restarted after yes")
        await w.until(lambda: LinkState.BACK in states(w), "back")


async def test_D_drops_the_connection_and_it_comes_back(settings: Settings) -> None:
    async with app_on(settings, "routing") as (_app, tab, w, pilot):
        await w.until(lambda: w.tally.acked >= 1, "messages flowing")
        await pilot.press("D")
        await w.until(lambda: LinkState.LOST in states(w), "the connection lost")
        await w.until(lambda: LinkState.BACK in states(w), "the connection back")
        back = max(i for i, e in enumerate(w.events) if isinstance(e, ConnectionChanged))
        await traffic_after(w, back, "a message processed after the drop")
        await until_screen(pilot, lambda: tab.outage.recoveries == 1, "the outage counted")


def test_the_outage_reads_down_reconnecting_back_with_elapsed_time() -> None:
    outage = Outage()
    url = "amqp://x:****@h:1/"
    outage.apply([ConnectionChanged(LinkState.LOST, url)], now=10.0)
    assert outage.text(11.5) == "down 1.5 s" and outage.active
    outage.apply([ConnectionChanged(LinkState.RECONNECTING, url, "", 3)], now=12.0)
    assert outage.text(14.0) == "reconnecting (attempt 3, 4.0 s)"
    outage.apply([BrokerRestarted("embedded broker", 1.25), ConnectionChanged(LinkState.BACK, url)], now=15.0)
    assert outage.text(99.0) == "back after 5.0 s; the restart took 1.2 s"
    assert not outage.active and outage.recoveries == 1


async def test_enter_on_the_shared_broker_question_cancels(tmp_path: Path) -> None:
    # Enter pressed out of habit must not restart a broker others use: Cancel has the focus
    async with asked_to_restart_a_shared_broker(tmp_path) as (app, w, pilot):
        assert app.screen.focused is not None and app.screen.focused.id == "restart-no"
        await pilot.press("enter")
        await until_screen(pilot, lambda: not isinstance(app.screen, ConfirmRestart), "closed")
        assert app._restart is None  # no restart worker was started
        assert not w.of(BrokerRestarting) and not w.of(BrokerRestarted)


async def test_a_drop_after_a_restart_does_not_mention_the_restart(tmp_path: Path) -> None:
    async with app_on(Settings(broker="embedded", data_dir=tmp_path)) as (app, tab, w, pilot):
        await w.until(lambda: w.tally.acked >= 1, "jobs flowing")
        await pilot.press("R")
        await w.until(lambda: tab.outage.recoveries == 1, "back after the restart")
        await until_screen(pilot, lambda: "the restart took" in header_text(app, "#link"), "restart took")
        await until_screen(
            pilot, lambda: tab.controller.engine is not None and tab.controller.engine.connected, "attached"
        )
        await pilot.press("D")
        await w.until(lambda: tab.outage.recoveries == 2, "back after the drop")
        await until_screen(pilot, lambda: "back after" in header_text(app, "#link"), "back after N s")
        assert "restart" not in header_text(app, "#link")
        assert tab.outage.restart_took is None


async def test_R_while_the_broker_is_unreachable_says_so_and_does_not_wait(tmp_path: Path) -> None:
    nowhere = "amqp://guest:guest@127.0.0.1:1/"
    settings = Settings(url=nowhere, url_source="--url", data_dir=tmp_path)
    async with app_on(settings, broker=BrokerHandle(nowhere)) as (app, _tab, w, pilot):
        await w.until(lambda: LinkState.UNREACHABLE in states(w), "the broker unreachable")
        await pilot.press("R")
        await until_screen(
            pilot,
            lambda: any("already unreachable" in n.message for n in app._notifications),
            "the notification",
        )
        assert not isinstance(app.screen, ManualRestart)


def test_a_drop_clears_the_duration_of_an_earlier_restart() -> None:
    outage = Outage()
    url = "amqp://x:****@h:1/"
    outage.apply(
        [BrokerRestarting("embedded broker", "stop and start it"), ConnectionChanged(LinkState.LOST, url)],
        now=1.0,
    )
    outage.apply([BrokerRestarted("embedded broker", 0.25), ConnectionChanged(LinkState.BACK, url)], now=1.5)
    assert outage.text(9.0) == "back after 0.5 s; the restart took 0.2 s"
    outage.apply([ConnectionChanged(LinkState.LOST, url)], now=10.0)
    assert outage.restart_took is None and outage.text(10.5) == "down 0.5 s"
    outage.apply([ConnectionChanged(LinkState.BACK, url)], now=10.75)
    assert outage.text(99.0) == "back after 0.8 s"
