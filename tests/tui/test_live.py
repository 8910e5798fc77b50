"""Pilot tests on the real broker: press keys, then check the screen, the events and the broker.

Each test watches the tab's engine through its own subscriber (a Watcher, added before the engine
starts), waits on events with a deadline, and compares what the screen shows with that count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Label, Static

from broker_sim.domain.events import (
    Abandoned,
    Acked,
    ConnectionChanged,
    Delivered,
    LinkState,
    Nacked,
    PrefetchChanged,
    Published,
    QueueDepth,
    Returned,
)
from broker_sim.settings import Settings
from broker_sim.tui.help import HelpScreen
from broker_sim.tui.pattern_tab import PatternTab
from broker_sim.tui.publish_form import PublishForm
from tests.support import Watcher
from tests.tui.harness import app_on, until_screen

SCENARIOS = [
    "work-queue", "pubsub", "routing", "topic", "headers", "retry", "overflow", "priority", "rpc", "confirms"
]  # fmt: skip
COUNTED = ("published", "confirmed", "returned", "delivered", "acked", "nacked", "redelivered", "lost")


def retried_back(w: Watcher) -> bool:
    """Every job rejected into a retry loop (not parked) has come back and been delivered again."""
    due: Counter[str] = Counter(
        n.message_id for n in w.of(Nacked) if not n.requeue and "parked" not in n.reason
    )
    seen = Counter(d.message_id for d in w.of(Delivered))
    return all(seen[m] > n for m, n in due.items())


async def settled(pilot: Pilot[None], tab: PatternTab, w: Watcher) -> None:
    """Producers paused, every message finished, and the screen has caught up with the engine."""
    await pilot.press("space")
    t = w.tally
    retrying = any(q.message_ttl_ms and q.dead_letter_exchange is not None for q in tab.scenario.queues)
    await w.until(
        lambda: (
            bool(w.of(Published))
            and t.confirmed + t.returned + t.publish_failed == t.published
            and t.acked + t.nacked + t.abandoned >= t.delivered
            and all(not f.in_flight for f in t.consumers.values())
            and (not retrying or retried_back(w))
        ),
        "every published message confirmed and every delivery finished",
    )
    await until_screen(pilot, lambda: tab.bridge.received == len(w.events), "the screen saw every event")


def screen_text(tab: PatternTab, selector: str) -> str:
    """The plain text a Static shows, or the lines of the Statics inside it (the figures)."""
    node = tab.query_one(selector)
    lines = [node] if isinstance(node, Static) else list(node.query(Static))
    return "\n".join(str(line.content) for line in lines)


def canvas_text(tab: PatternTab) -> str:
    return "\n".join(tab.canvas.render_line(y).text for y in range(tab.canvas.size.height))


@pytest.mark.parametrize("name", SCENARIOS)
async def test_tab_shows_tokens_and_the_engines_counts(settings: Settings, name: str) -> None:
    async with app_on(settings, name) as (_app, tab, w, pilot):
        await w.until(lambda: w.tally.acked >= 3, "three messages processed")
        await until_screen(pilot, lambda: any(g in canvas_text(tab) for g in "●○◆✓"), "a token on the canvas")
        await settled(pilot, tab, w)
        # Every figure at one look: a figure caught up alone proves nothing while a burst is in flight.
        await until_screen(
            pilot,
            lambda: all(getattr(tab.view.tally, f) == getattr(w.tally, f) for f in (*COUNTED, "routed")),
            "the view's figures equal to the engine's",
        )
        # The counters are redrawn on a timer, after the view has the figures; the engine's counts
        # are read at each look, since a backlog (the priority tab's) and timeline bursts go on
        # after the producers are paused.
        await until_screen(
            pilot,
            lambda: all(
                f in screen_text(tab, "#counters")
                for f in (f"published {w.tally.published} ", f"acked {w.tally.acked} ")
            ),
            "the engine's counts",
        )


async def test_plus_and_minus_change_the_consumers_on_screen_and_at_the_broker(settings: Settings) -> None:
    def at_broker(n: int) -> Callable[[], bool]:
        return lambda: any(
            isinstance(e, QueueDepth) and e.queue == "image-jobs" and e.consumers == n for e in w.events[-20:]
        )

    async with app_on(settings, "work-queue") as (_app, tab, w, pilot):
        await w.until(at_broker(3), "the broker counts 3 consumers")
        # a scale pressed while the engine is still attaching only sets the target for the next connect
        await w.until(
            lambda: tab.controller.engine is not None and tab.controller.engine.connected,
            "the engine connected",
        )
        await pilot.press("plus")
        await w.until(at_broker(4), "the broker counts 4 consumers")
        await until_screen(pilot, lambda: len(tab.view.roster["worker"]) == 4, "4 workers on screen")
        await until_screen(pilot, lambda: "4✓" in canvas_text(tab), "worker-4 drawn as a cell of its group")
        await until_screen(pilot, lambda: "worker: 4 consumers" in screen_text(tab, "#counters"), "4 counted")
        await pilot.press("minus")
        await pilot.press("minus")
        await w.until(at_broker(2), "the broker counts 2 consumers")
        await until_screen(pilot, lambda: len(tab.view.roster["worker"]) == 2, "2 workers on screen")


async def test_prefetch_toggle_hands_out_more_than_one_job_then_one(settings: Settings) -> None:
    async with app_on(settings, "work-queue") as (_app, tab, w, pilot):
        await w.until(lambda: len(w.tally.alive_consumers("worker")) == 3, "three workers up")
        await pilot.press("up", "up", "up")  # 32 jobs/s: more than three workers can do
        await pilot.press("f")
        await w.until(
            lambda: any(isinstance(e, PrefetchChanged) and e.prefetch == 0 for e in w.events), "prefetch 0"
        )
        await w.until(
            lambda: any(f.in_flight > 1 for f in w.tally.consumers.values()),
            "a worker holding more than one job (unlimited prefetch)",
        )
        await until_screen(pilot, lambda: "prefetch ∞" in screen_text(tab, "#counters"), "∞")
        await pilot.press("f")
        await w.until(
            lambda: w.of(PrefetchChanged)[-1].prefetch == 1,
            "prefetch back to 1",
        )
        await until_screen(pilot, lambda: "prefetch 1" in screen_text(tab, "#counters"), "1")


async def test_kill_redelivers_the_killed_workers_job_to_another(settings: Settings) -> None:
    async with app_on(settings, "work-queue") as (_app, tab, w, pilot):
        await w.until(lambda: len(w.tally.alive_consumers("worker")) == 3, "three workers up")
        await pilot.press("up", "up")  # 16 jobs/s: every worker is always busy
        await w.until(lambda: all(f.in_flight for f in w.tally.consumers.values()), "every worker busy")
        await pilot.press("k")
        await w.until(lambda: bool(w.of(Abandoned)), "the killed worker's job handed back")
        lost: Abandoned = w.of(Abandoned)[0]
        assert lost.redelivered

        def redone() -> bool:
            again = [e for e in w.of(Delivered) if e.message_id == lost.message_id and e.redelivered]
            return bool(again) and any(a.message_id == lost.message_id for a in w.of(Acked))

        await w.until(redone, f"job {lost.message_id} redelivered and processed")
        redelivered_to = next(
            e.consumer for e in w.of(Delivered) if e.message_id == lost.message_id and e.redelivered
        )
        assert redelivered_to != lost.consumer
        await until_screen(pilot, lambda: lost.consumer in tab.view.fallen, "the killed worker marked")
        log = "\n".join(line.text for line in tab.view.log)
        assert "REDELIVERED" in log


async def test_publish_form_message_is_delivered_and_counted(settings: Settings) -> None:
    async with app_on(settings, "routing") as (app, tab, w, pilot):
        await w.until(lambda: tab.view.connected and len(w.tally.alive_consumers()) == 2, "connected")
        await pilot.press("space")  # quiet: only our message moves
        await pilot.press("m")
        await until_screen(pilot, lambda: isinstance(app.screen, PublishForm), "the form")
        form = app.screen
        assert isinstance(form, PublishForm)
        form.query_one("#headers", Input).value = "oops"
        form.query_one("#publish", Button).press()  # a press, not a click: a toast may cover the spot
        await until_screen(
            pilot, lambda: "not name=value" in str(form.query_one("#form-error", Label).content), "error"
        )
        assert form.query_one("#body", Input).value  # nothing typed is lost
        form.query_one("#headers", Input).value = ""
        form.query_one("#routing-key", Input).value = "error"
        form.query_one("#publish", Button).press()  # a press, not a click: a toast may cover the spot
        await w.until(lambda: any(p.producer == "you" for p in w.of(Published)), "our message published")
        mine = next(p.message_id for p in w.of(Published) if p.producer == "you")
        await w.until(
            lambda: (
                {a.queue for a in w.of(Acked) if a.message_id == mine} == {"disk-server", "console-server"}
            ),
            "our error line stored by both log servers",
        )
        await until_screen(pilot, lambda: tab.view.tally.acked == w.tally.acked, "counted on screen")
        assert not isinstance(app.screen, PublishForm)
        assert any("you#1" in line.text for line in tab.view.log)


def example(placeholder: str) -> str:
    """The example a field's placeholder gives (``e.g. X (why)`` → X), or "" when it gives none."""
    return placeholder.removeprefix("e.g. ").split(" (")[0] if placeholder.startswith("e.g. ") else ""


@pytest.mark.parametrize("name", SCENARIOS)
async def test_the_publish_forms_examples_route_in_their_tab(settings: Settings, name: str) -> None:
    async with app_on(settings, name) as (app, tab, w, pilot):
        await w.until(
            lambda: tab.controller.engine is not None and tab.controller.engine.connected, "connected"
        )
        await pilot.press("space")  # quiet: only our message moves
        await pilot.press("m")
        await until_screen(pilot, lambda: isinstance(app.screen, PublishForm), "the form")
        form = app.screen
        key_field, headers_field = form.query_one("#routing-key", Input), form.query_one("#headers", Input)
        kind = tab.scenario.exchange_type(tab.scenario.producers[0].exchange)
        if kind in ("fanout", "headers"):
            assert key_field.placeholder.startswith(f"ignored: a {kind} exchange")
        else:
            assert example(key_field.placeholder), key_field.placeholder
        assert bool(example(headers_field.placeholder)) == (kind == "headers")
        key_field.value = example(key_field.placeholder)
        headers_field.value = example(headers_field.placeholder)
        form.query_one("#publish", Button).press()
        await w.until(lambda: any(p.producer == "you" for p in w.of(Published)), "our message published")
        mine = next(p.message_id for p in w.of(Published) if p.producer == "you")
        await w.until(
            lambda: (
                any(d.message_id == mine for d in w.of(Delivered))
                or any(r.message_id == mine for r in w.of(Returned))
            ),
            "our message delivered or returned",
        )
        assert not any(r.message_id == mine for r in w.of(Returned)), f"{key_field.value!r} came back"


async def test_help_opens_while_the_broker_is_unreachable(settings: Settings) -> None:
    nowhere = settings.with_(url="amqp://guest:guest@127.0.0.1:1/", url_source="--url")
    async with app_on(nowhere, "work-queue") as (app, tab, w, pilot):
        await w.until(
            lambda: any(
                isinstance(e, ConnectionChanged) and e.state == LinkState.UNREACHABLE for e in w.events
            ),
            "the engine reports the broker unreachable",
        )
        await until_screen(pilot, lambda: tab.query_one("#trouble").display, "the trouble panel")
        panel = screen_text(tab, "#trouble")
        assert "docker compose up -d" in panel and "--url" in panel and "127.0.0.1:1" in panel
        await pilot.press("question_mark")
        await until_screen(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.press("escape")
        await until_screen(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")
        await pilot.press("tab")
        await until_screen(pilot, lambda: app.active_tab is not tab, "the next tab")
