"""The offer of a vhost of broker-sim's own, on the user's RabbitMQ, pressed through with Pilot.

An administrator and a user who is not one, in a vhost that is not broker-sim's (tracing off),
all made by the test and removed after. The offer shows only while routing is inferred; yes
creates the vhost and every running engine moves there and traces, without a restart, and the
next start of the app goes straight there; no (and a user who may not) leaves the broker's
definitions as they were.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from broker_sim.broker.handle import NodeOnThisMachine
from broker_sim.domain.events import Routed, TracingChanged
from broker_sim.domain.urls import parse_url
from broker_sim.remembered_vhost import memory_path, remembered_vhost
from broker_sim.settings import Settings, load_settings
from broker_sim.tui.app import BrokerSimApp
from broker_sim.tui.pattern_tab import PatternTab
from broker_sim.tui.vhost_offer import ConfirmOwnVhost
from tests import support
from tests.own_vhost import UsersRabbitMQ, until_traced_after, users_rabbitmq
from tests.support import DEADLINE, Watcher
from tests.tui.harness import app_on

__all__ = ["users_rabbitmq"]  # the fixture, imported to be found

Running = tuple[BrokerSimApp, PatternTab, Watcher, Pilot[None]]


async def until(pilot: Pilot[None], predicate: Callable[[], bool], what: str) -> None:
    """Let the app run until the predicate holds (the offer's check runs rabbitmqctl in a thread)."""
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"the app never showed: {what}")
        await pilot.pause()


def line(app: BrokerSimApp, selector: str) -> str:
    """A line of the header as shown ("" when hidden)."""
    widget = app.header.query_one(selector, Static)
    return str(widget.render()) if widget.display else ""


def offer_text(app: BrokerSimApp) -> str:
    offer = app.header.offer
    return str(offer.render()) if offer.display else ""


def offered_to(
    url: str, r: UsersRabbitMQ, data_dir: Path, trace: bool | None = None
) -> AbstractAsyncContextManager[Running]:
    """The app on the Routing tab, as the user of ``url`` on the machine's RabbitMQ."""
    settings = Settings(url=url, url_source="test", data_dir=data_dir, own_vhost=r.own, trace=trace)
    return app_on(settings, "routing", broker=NodeOnThisMachine(url))


async def test_yes_creates_the_vhost_and_every_tab_traces_there_now_and_next_start(
    users_rabbitmq: UsersRabbitMQ, tmp_path: Path
) -> None:
    r = users_rabbitmq
    async with offered_to(r.admin_url, r, tmp_path) as (app, tab, w, pilot):
        await w.until(lambda: bool(w.of(TracingChanged)), "the engine decided about tracing")
        # the view folds the engine's events on its next frame
        await until(pilot, lambda: tab.view.traced is False, "the tab shows routing inferred")
        await until(pilot, lambda: app.header.offer.phase == "offered", "the offer")
        assert f"V: run in a vhost of its own, '{r.own}'" in offer_text(app)
        app.action_show_tab(0)  # a second running engine: every tab moves, not only the one on screen
        await pilot.pause()
        app.action_show_tab(2)
        work_queue = app.tabs[0]
        await until(pilot, lambda: work_queue.view.traced is False, "the work queue running, inferred")

        await pilot.press("V")
        await until(pilot, lambda: isinstance(app.screen, ConfirmOwnVhost), "the question")
        seen = len(w.events)
        await pilot.press("y")
        await until_traced_after(w, seen)
        await until(pilot, lambda: work_queue.view.traced is True, "the other tab traced too")
        await until(pilot, lambda: tab.view.traced is True and not offer_text(app), "the offer gone")
        assert (
            tab.controller.engine is not None and parse_url(tab.controller.engine.settings.url).vhost == r.own
        )
        assert (await asyncio.to_thread(r.vhosts))[r.own] is True
    assert remembered_vhost(tmp_path, r.admin_url) == r.own

    # the next start, made as the CLI makes it: settings from the user's sources (a URL that names
    # no vhost, the same data dir), then the app, which finds the broker itself
    again = load_settings(
        None, env={"BROKER_SIM_URL": support.test_url()}, data_dir=tmp_path, own_vhost=r.own
    )
    assert again.vhost_source == f"remembered in {memory_path(tmp_path)}"
    async with app_on(again, "routing") as (app, tab, w, pilot):
        await w.until(lambda: bool(w.of(TracingChanged)), "the engine decided about tracing")
        engine = tab.controller.engine
        assert engine is not None and parse_url(engine.settings.url).vhost == r.own
        await until(
            pilot,
            lambda: tab.view.traced is True and line(app, "#routing") == "routing: traced by the broker",
            "routing traced, on screen",
        )
        assert line(app, "#hint") == (
            f"vhost {r.own!r} remembered in {memory_path(tmp_path)} (--vhost / goes back)"
        )
        await w.until(
            lambda: any(isinstance(e, Routed) and e.source == "trace" for e in w.events),
            "a message routed as the broker traced it",
        )
        assert not offer_text(app) and app.header.offer.phase == "idle"
        await pilot.press("V")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmOwnVhost)


async def test_no_changes_nothing(users_rabbitmq: UsersRabbitMQ, tmp_path: Path) -> None:
    r = users_rabbitmq
    async with offered_to(r.admin_url, r, tmp_path) as (app, tab, w, pilot):
        await until(pilot, lambda: app.header.offer.phase == "offered", "the offer")
        before = await asyncio.to_thread(r.definitions), await asyncio.to_thread(r.vhosts)
        for key in ("n", "escape", "enter"):  # Enter: "not now" has the focus
            if key == "n":
                await pilot.click("#why")  # the mouse twin of V
            else:
                await pilot.press("V")
            await until(pilot, lambda: isinstance(app.screen, ConfirmOwnVhost), "the question")
            await pilot.press(key)
            await until(
                pilot, lambda: not isinstance(app.screen, ConfirmOwnVhost), f"the question gone ({key})"
            )
        acked = w.tally.acked
        await w.until(lambda: w.tally.acked > acked, "the tab keeps running")
        assert (await asyncio.to_thread(r.definitions), await asyncio.to_thread(r.vhosts)) == before
        assert r.own not in before[1]
        assert tab.view.traced is False and "V:" in offer_text(app)
        assert (
            tab.controller.engine is not None
            and parse_url(tab.controller.engine.settings.url).vhost == r.plain
        )
    assert not memory_path(tmp_path).exists()


async def test_a_user_who_may_not_gets_how_to_get_one_and_keeps_running_inferred(
    users_rabbitmq: UsersRabbitMQ, tmp_path: Path
) -> None:
    r = users_rabbitmq
    async with offered_to(r.user_url, r, tmp_path) as (app, tab, w, pilot):
        await until(pilot, lambda: app.header.offer.phase == "cannot", "the advice")
        before = await asyncio.to_thread(r.definitions)
        text = offer_text(app)
        assert f"rabbitmqctl add_vhost {r.own}; rabbitmqctl set_permissions -p {r.own} {r.user}" in text
        assert "V:" not in text
        await pilot.press("V")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmOwnVhost)
        acked = w.tally.acked
        await w.until(lambda: w.tally.acked > acked, "the tab keeps running")
        assert tab.view.traced is False
        assert await asyncio.to_thread(r.definitions) == before
    assert not memory_path(tmp_path).exists()


async def test_no_offer_while_routing_is_traced(rabbitmq_settings: Settings) -> None:
    # the session's vhost is broker-sim's own and traces: there is nothing to offer
    async with app_on(rabbitmq_settings, "routing") as (app, tab, w, pilot):
        await w.until(lambda: bool(w.of(TracingChanged)), "the engine decided about tracing")
        await until(pilot, lambda: tab.view.traced is True, "routing traced on screen")
        assert not offer_text(app)
        await pilot.press("V")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmOwnVhost)
        assert app.header.offer.phase == "idle"


async def test_with_no_trace_the_line_gives_the_engines_reason_and_offers_nothing(
    users_rabbitmq: UsersRabbitMQ, tmp_path: Path
) -> None:
    r = users_rabbitmq
    async with offered_to(r.admin_url, r, tmp_path, trace=False) as (app, tab, _w, pilot):
        await until(pilot, lambda: app.header.offer.phase == "not-ours", "the engine's reason")
        assert tab.view.tracing is not None
        assert offer_text(app) == f"routing inferred: {tab.view.tracing.detail}"
        await pilot.press("V")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmOwnVhost)
    assert r.own not in await asyncio.to_thread(r.vhosts)
