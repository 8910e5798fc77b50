"""One scenario tab: its engine (started the first time the tab is shown), the flow diagram,
the counters, the rate sparkline and the log of the latest hops.

The engine is imported inside the worker that starts it, so ``aio_pika`` never delays the first
frame. Controls run in workers too; an :class:`EngineError` becomes a notification in words.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import RichLog, Sparkline, Static

from broker_sim.domain.events import FlowEvent, LinkState
from broker_sim.domain.ledger import Ledger
from broker_sim.domain.recording import Recorder
from broker_sim.domain.scenario import Scenario
from broker_sim.settings import Settings
from broker_sim.tui.bridge import EventBridge, FlowBatch
from broker_sim.tui.canvas import FlowCanvas
from broker_sim.tui.ids import widget_id
from broker_sim.tui.lazy import load_engine, load_uploads
from broker_sim.tui.outage import Outage
from broker_sim.tui.publish_form import PublishRequest
from broker_sim.tui.replay import Story, StoryBar, step_speed
from broker_sim.tui.session import save_session
from broker_sim.tui.view_state import ScenarioView, short_id

if TYPE_CHECKING:
    from broker_sim.broker.handle import BrokerHandle
    from broker_sim.sim import Engine
    from broker_sim.sim.uploads import UploadServer

FPS = 30
FIGURES_HZ = 8
"""Boxes, counters and log are redrawn at most this often: numbers need not change at 30 fps."""
STORY_HZ = 2
"""The replay bar (progress and live expectations) is redrawn this often."""
LOG_PER_REDRAW = 40
MIN_RATE, MAX_RATE = 0.25, 2000.0
LOG_KINDS = (
    "publish", "routed", "inferred", "returned", "failed", "delivered", "redelivered",
    "acked", "nacked", "abandoned", "consumer", "consumer-down", "link",
)  # fmt: skip
TROUBLE = {LinkState.UNREACHABLE, LinkState.AUTH_REFUSED, LinkState.LOST, LinkState.RECONNECTING}

Control = Callable[["Engine"], Awaitable[object] | object]


class ViewChanged(Message):
    """A tab's figures were redrawn: the app refreshes the header if the tab is on screen."""

    def __init__(self, tab: PatternTab) -> None:
        super().__init__()
        self.tab = tab


class PatternTab(Vertical):
    """Everything one scenario shows, fed by one engine through one bridge."""

    COMPONENT_CLASSES = {f"log--{kind}" for kind in LOG_KINDS}

    def __init__(self, scenario: Scenario, settings: Settings, *, live: bool = True) -> None:
        super().__init__(id=widget_id("tab-", scenario.name))
        self.scenario = scenario
        self.settings = settings
        self.live = live
        self.view = ScenarioView(scenario)
        self.bridge = EventBridge(self)
        self.engine: Engine | None = None
        self.broker: BrokerHandle | None = None
        """The broker, once the app has found or started it; engines start only then."""
        self.started = False
        self.shown = False
        self.animating = settings.animation
        self.outage = Outage()
        self.recorder: Recorder | None = None
        self.story: Story | None = None
        self.upload_port: int | None = None
        """Set by the app for the work-queue tab with ``--api-port``: serve uploads into this engine."""
        self.uploads: UploadServer | None = None
        self.saved: Path | None = None
        """The latest file ``S`` wrote."""
        self.broker_problem = ""
        """Why no broker could be found or started (shown on the panel), or ""."""
        self._dirty = True
        self._ticker: Timer | None = None
        self.canvas = FlowCanvas(self.view, id="canvas")
        self.observers: list[Callable[[FlowEvent], None]] = []
        """Extra engine-bus subscribers, added before each engine starts (tests count with them)."""

    def compose(self) -> ComposeResult:
        """Story line, trouble panel, replay bar, diagram, counters and sparkline, log."""
        yield Static(self.scenario.description, classes="story")
        yield Static("", id="uploads")
        yield Static("", id="trouble")
        yield StoryBar(id="story-bar")
        yield self.canvas
        with Horizontal(id="figures"):
            yield Static("", id="counters")
            yield Sparkline([0.0], id="rate")
        yield RichLog(id="log", max_lines=300, wrap=False, markup=False, auto_scroll=True)

    def on_mount(self) -> None:
        """Figures redraw on a gentle timer; the rate history ticks once a second while live."""
        self.query_one("#log", RichLog).can_focus = False
        for hidden in ("#trouble", "#uploads", "#story-bar"):
            self.query_one(hidden).display = False
        self._show_rates()
        self.set_interval(1 / FIGURES_HZ, self._redraw_figures)
        if self.live:
            self.set_interval(1.0, self._sample_rates)
            self.set_interval(1 / STORY_HZ, self._show_story)
        self._redraw_figures()

    # -- lifecycle --------------------------------------------------------------------------------

    def activate(self) -> None:
        """The tab is shown: start its engine the first time, and animate while visible."""
        self.shown = True
        self.ensure_started()
        if self.animating and self.live and self._ticker is None:
            self._ticker = self.set_interval(1 / FPS, self._frame)
        self._redraw_figures(force=True)

    def ensure_started(self) -> None:
        """Start the live engine if it has not started and the broker is known."""
        if self.live and not self.started and self.broker is not None:
            self.started = True
            self._start_engine()

    def broker_ready(self, broker: BrokerHandle) -> None:
        """The app found or started the broker: engines may start (this one now, if shown)."""
        self.broker = broker
        if self.shown or self.upload_port is not None:
            self.ensure_started()

    def broker_failed(self, reason: str) -> None:
        """No broker could be started: say why on the panel."""
        self.broker_problem = reason
        self._show_trouble()

    def deactivate(self) -> None:
        """Another tab is shown: keep counting, stop animating (nobody sees it)."""
        self.shown = False
        self._stop_ticker()

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    @work(group="engine", exit_on_error=False)
    async def _start_engine(self) -> None:
        await self._new_engine()

    async def _new_engine(
        self, *, story: bool = False, also: tuple[Callable[[FlowEvent], None], ...] = ()
    ) -> Engine:
        # imported here, in a thread: aio_pika takes ~0.3 s to import and must not hold up the
        # first frame or the event loop (an import inside a coroutine would block the loop)
        await asyncio.to_thread(load_engine)
        from broker_sim import sim

        prefix = f"{self.settings.name_prefix}story." if story else None
        # a story removes its durable queues when it stops: the next play-through starts empty
        engine: Engine = sim.Engine(
            self.scenario, self.settings, broker=self.broker, prefix=prefix, remove_durable=story
        )
        self.recorder = recorder = Recorder(self.scenario)
        subscribers: list[Callable[[FlowEvent], None]] = [*self.observers, recorder, self.bridge, *also]
        for subscriber in subscribers:
            engine.bus.subscribe(subscriber)
        self.engine = engine
        await engine.start()
        if self.upload_port is not None:
            await self._open_uploads(engine, self.upload_port)
        return engine

    async def _open_uploads(self, engine: Engine, port: int) -> None:
        await asyncio.to_thread(load_uploads)
        from broker_sim.sim import uploads

        first = self.scenario.producers[0]
        server = uploads.UploadServer(
            engine,
            spool_dir=uploads.spool_dir(self.settings.data_dir),
            exchange=first.exchange,
            routing_key=first.routing_keys[0],
            port=port,
        )
        try:
            await server.start()
        except OSError as exc:
            self.notify(
                f"uploads: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); "
                "start broker-sim with another --api-port",
                severity="error",
                timeout=10,
            )
            return
        self.uploads = server
        line = self.query_one("#uploads", Static)
        line.update(f"uploads: curl -F image=@photo.png http://127.0.0.1:{server.port}/jobs")
        line.display = True

    async def stop_engine(self) -> None:
        """Stop the engine (it removes what it declared and restores tracing) and its uploads."""
        engine, self.engine = self.engine, None
        uploads, self.uploads = self.uploads, None
        if uploads is not None:
            await uploads.stop()
        if engine is not None:
            await engine.stop()

    # -- the story (replay) -----------------------------------------------------------------------

    def play_story(self) -> None:
        """Play this scenario's story from the beginning on a fresh engine (again if it runs)."""
        if self.broker is None:
            self.notify("the broker is not ready yet", severity="warning")
            return
        self.started = True
        self._play_story()

    @work(group="engine", exclusive=True, exit_on_error=False)
    async def _play_story(self) -> None:
        self.story = None
        await self.stop_engine()
        self._reset_view()
        ledger = Ledger()
        engine = await self._new_engine(story=True, also=(ledger,))
        story = self.story = Story(engine, self.view.tally, ledger)
        self.query_one("#story-bar").display = True
        self._show_story()
        await story.play(self._show_story)
        verdict = "every expectation held" if story.passed else "an expectation FAILED"
        self.notify(f"story over: {verdict}", title=self.scenario.title, timeout=6)

    def _reset_view(self) -> None:
        self.bridge.take()  # the old engine's last events (its "closed") belong to the old view
        self.view = ScenarioView(self.scenario)
        self.canvas.show(self.view)
        self.outage = Outage()
        self.query_one("#log", RichLog).clear()
        self._dirty = True
        self._redraw_figures(force=True)
        self._show_rates()

    def _show_story(self) -> None:
        if self.story is not None and self.shown:
            self.query_one(StoryBar).show(self.story)

    def story_speed(self, step: int) -> None:
        """One step up or down the speed ladder (a story must be playing)."""
        if self.story is None:
            self.notify("P plays this tab's story first; < > then change its speed", severity="warning")
            return
        self.story.set_speed(step_speed(self.story.speed, step))
        self._show_story()

    def toggle_story_pause(self) -> None:
        """Pause or resume the story (producers and timeline freeze together)."""
        if self.story is None:
            self.notify("P plays this tab's story first; p then pauses it", severity="warning")
            return
        self.story.toggle_pause()
        self._show_story()

    # -- recording --------------------------------------------------------------------------------

    def save_session(self) -> None:
        """Save what happened on this engine as a scenario file (in a worker)."""
        if self.engine is None or self.recorder is None:
            self.notify("this tab's engine has not started yet: nothing to save", severity="warning")
            return
        self._save_session(self.engine, self.recorder)

    @work(group="save", exclusive=True, exit_on_error=False)
    async def _save_session(self, engine: Engine, recorder: Recorder) -> None:
        folder = self.settings.scenarios_dir or Path.cwd()
        held = self.story is not None and self.story.phase in ("paused", "settling", "done")
        path = await save_session(
            engine,
            recorder,
            self.view.tally,
            folder,
            lambda words: self.notify(words, title=self.scenario.title, timeout=4),
            resume=not held,
        )
        self.saved = path
        self.notify(f"saved {path}\nreplay it: broker-sim run {path}", title=self.scenario.title, timeout=10)

    # -- events -----------------------------------------------------------------------------------

    @on(FlowBatch)
    def _on_batch(self, message: FlowBatch) -> None:
        message.stop()
        self.feed(self.bridge.take(), redraw=False)

    def feed(self, events: list[FlowEvent], *, redraw: bool = True) -> None:
        """Fold events into the view (the bridge does this live; snapshot tests call it directly)."""
        self.view.apply(events)
        self.outage.apply(events, time.monotonic())
        if not self.animating:
            self.view.tokens.settle()
        self._dirty = True
        # the frame ticker (or, animation off, the figures timer) repaints: a burst of batches
        # must not paint the canvas once per batch
        self.canvas.tokens_moved(repaint=False)
        if redraw:
            self._redraw_figures(force=True)

    def _frame(self) -> None:
        if self.view.tokens.step():
            self.canvas.tokens_moved()

    def _sample_rates(self) -> None:
        self.view.sample_rates()
        self._show_rates()

    def _show_rates(self) -> None:
        # an all-zero sparkline draws as a solid block: show it once something has been acked
        rate = self.query_one("#rate", Sparkline)
        rate.data = [float(n) for n in self.view.acked_history]
        rate.display = any(self.view.acked_history)

    def set_animation(self, on: bool) -> None:
        """Animation on or off; off, tokens jump to where the events put them."""
        self.animating = on
        if not on:
            self._stop_ticker()
            self.view.tokens.settle()
            self.canvas.tokens_moved()
        elif self.shown:
            self.activate()

    # -- drawing ----------------------------------------------------------------------------------

    def _redraw_figures(self, force: bool = False) -> None:
        if not (self._dirty or force):
            return
        self._dirty = False
        view = self.view
        self.canvas.redraw()
        self.query_one("#counters", Static).update(self._counters_text())
        log = self.query_one("#log", RichLog)
        lines = view.drain_log()
        if len(lines) > LOG_PER_REDRAW:
            log.write(Text(f"… {len(lines) - LOG_PER_REDRAW} more lines", style="dim"))
            lines = lines[-LOG_PER_REDRAW:]
        for line in lines:
            style = self.get_component_rich_style(f"log--{line.kind}", partial=True)
            log.write(Text(line.text, style=style))
        self._show_trouble()
        self.post_message(ViewChanged(self))

    def _counters_text(self) -> Text:
        t, view = self.view.tally, self.view
        text = Text()
        text.append("published ", "dim").append(f"{t.published}")
        text.append("  confirmed ", "dim").append(f"{t.confirmed}")
        text.append("  returned ", "dim").append(f"{t.returned}", "bold" if t.returned else "")
        if t.publish_refused:  # only where a queue refuses publishes (x-overflow reject-publish)
            text.append("  nacked by the broker ", "dim").append(f"{t.publish_refused}", "bold")
        # the publisher's side, then the consumers': two short lines rather than one that wraps
        # mid-pair ("redelivered" / "0") beside the sparkline
        text.append("\ndelivered ", "dim").append(f"{t.delivered}")
        text.append("  acked ", "dim").append(f"{t.acked}")
        text.append("  nacked ", "dim").append(f"{t.nacked}")
        text.append("  redelivered ", "dim").append(f"{t.redelivered}", "bold" if t.redelivered else "")
        text.append("  lost ", "dim").append(f"{t.lost}")
        routed = " · ".join(f"{q.name} {t.routed[q.name]}" for q in self.scenario.queues)
        text.append("\nrouted  ", "dim").append(routed)
        text.append(f"   (traced {t.routed_traced}, inferred {t.routed_inferred})", "dim")
        if view.leftover:
            held = ", ".join(f"{q} {n}" for q, n in view.leftover.items())
            text.append(f"   + from an earlier run: {held}", "dim")
        groups = []
        for g in self.scenario.consumers:
            alive = len(view.roster.get(g.name, []))
            prefetch = view.prefetch.get(g.name, g.prefetch)
            mark = "▸" if g.name == self.canvas.selected_group else " "
            groups.append(
                f"{mark}{g.name}: {alive} consumer{'s' if alive != 1 else ''}, prefetch {prefetch or '∞'}"
            )
        text.append("\n" + "   ".join(groups))
        states = [f"{p}: {view.stopped(p) or f'{r:g}/s'}" for p, r in view.rates.items()]
        text.append("\nproducers  ", "dim").append(", ".join(states))
        text.append("   acked/s (last 60 s) →", "dim")
        return text

    def _show_trouble(self) -> None:
        panel = self.query_one("#trouble", Static)
        link = self.view.link
        if self.broker_problem:
            panel.display = True
            panel.update(_trouble_text("Could not start the broker", self.broker_problem))
            return
        if link is None or link.state not in TROUBLE:
            panel.display = False
            return
        panel.display = True
        if link.state == LinkState.AUTH_REFUSED:
            head = "The broker refused the login"
        elif link.state in (LinkState.LOST, LinkState.RECONNECTING):
            head = "Connection to the broker lost: reconnecting by itself"
        else:
            head = "No broker answers: retrying by itself"
        detail = link.detail if link.state != LinkState.RECONNECTING else f"attempt {link.attempt}"
        panel.update(_trouble_text(f"{head} (attempt {link.attempt})", detail))

    # -- controls ---------------------------------------------------------------------------------

    def control(self, action: Control, done: str = "") -> None:
        """Run an engine control in a worker; its refusal is shown in words."""
        self._control(action, done)

    @work(group="control", exit_on_error=False)
    async def _control(self, action: Control, done: str) -> None:
        from broker_sim.sim import EngineError

        if self.engine is None:
            self.notify("this tab's engine has not started yet", severity="warning")
            return
        try:
            result = action(self.engine)
            if inspect.isawaitable(result):
                result = await result
        except EngineError as exc:
            self.notify(str(exc), title=self.scenario.title, severity="warning")
            return
        if done:
            self.notify(done.format(result=result), title=self.scenario.title, timeout=3)

    async def send(self, request: PublishRequest) -> str:
        """Publish a message typed in the form; ValueError (in words) when the engine refuses."""
        from broker_sim.sim import EngineError

        if self.engine is None:
            raise ValueError("this tab's engine has not started yet")
        try:
            mid = await self.engine.publish_one(
                request.exchange,
                request.routing_key,
                request.body,
                headers=request.headers,
                persistent=request.persistent,
            )
        except EngineError as exc:
            raise ValueError(str(exc)) from None
        self.notify(f"published {short_id(mid)}: watch it go", title=self.scenario.title, timeout=3)
        return mid

    def cycle_group(self) -> str | None:
        """Select the next consumer group (the one + - f k act on)."""
        names = [g.name for g in self.scenario.consumers]
        if not names:
            return None
        current = self.canvas.selected_group
        nxt = names[(names.index(current) + 1) % len(names)] if current in names else names[0]
        self.canvas.selected_group = nxt
        self._redraw_figures(force=True)
        return nxt

    def scale_rates(self, factor: float) -> None:
        """Multiply every producer's rate (within sane bounds)."""
        for name, rate in self.view.rates.items():
            new = min(MAX_RATE, max(MIN_RATE, rate * factor))
            self.control(functools.partial(_set_rate, producer=name, rate=new))
        if self.view.rates:
            self.notify(
                ", ".join(
                    f"{n}: {min(MAX_RATE, max(MIN_RATE, r * factor)):g} msg/s"
                    for n, r in self.view.rates.items()
                ),
                timeout=2,
            )


def _trouble_text(head: str, detail: str) -> Text:
    return Text.assemble(
        (f"{head}\n", "bold"),
        f"{detail}\n\n",
        ("How to get a broker:\n", "bold"),
        "  • docker compose up -d      starts RabbitMQ from this repository (credentials in .env)\n",
        "  • broker-sim --url amqp://USER:PASS@HOST:5672/VHOST    or set BROKER_SIM_URL\n",
        "  • broker-sim --broker embedded    broker-sim's own broker, nothing to install\n\n",
        ("? help · Tab next pattern · q quit", "dim"),
    )


def _set_rate(engine: Engine, *, producer: str, rate: float) -> None:
    engine.set_rate(producer, rate)
