"""One scenario tab: its engine (started the first time the tab is shown), the flow diagram,
the counters, the rate sparkline and the log of the latest hops.

The engine is imported inside the worker that starts it, so ``aio_pika`` never delays the first
frame. Controls run in workers too; an :class:`EngineError` becomes a notification in words.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import RichLog, Sparkline, Static

from broker_sim.domain.events import FlowEvent, LinkState
from broker_sim.domain.scenario import Scenario
from broker_sim.settings import Settings
from broker_sim.tui.bridge import EventBridge, FlowBatch
from broker_sim.tui.canvas import FlowCanvas
from broker_sim.tui.publish_form import PublishRequest
from broker_sim.tui.view_state import ScenarioView, short_id

if TYPE_CHECKING:
    from broker_sim.sim import Engine

FPS = 30
FIGURES_HZ = 8
"""Boxes, counters and log are redrawn at most this often: numbers need not change at 30 fps."""
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
        super().__init__(id=f"tab-{scenario.name}")
        self.scenario = scenario
        self.settings = settings
        self.live = live
        self.view = ScenarioView(scenario)
        self.bridge = EventBridge(self)
        self.engine: Engine | None = None
        self.started = False
        self.shown = False
        self.animating = settings.animation
        self._dirty = True
        self._ticker: Timer | None = None
        self.canvas = FlowCanvas(self.view, id="canvas")
        self.observers: list[Callable[[FlowEvent], None]] = []
        """Extra engine-bus subscribers, added before the engine starts (tests count with them)."""

    def compose(self) -> ComposeResult:
        """Story line, trouble panel, diagram, counters and sparkline, log."""
        yield Static(self.scenario.description, classes="story")
        yield Static("", id="trouble")
        yield self.canvas
        with Horizontal(id="figures"):
            yield Static("", id="counters")
            yield Sparkline([0.0], id="rate")
        yield RichLog(id="log", max_lines=300, wrap=False, markup=False, auto_scroll=True)

    def on_mount(self) -> None:
        """Figures redraw on a gentle timer; the rate history ticks once a second while live."""
        self.query_one("#log", RichLog).can_focus = False
        self.query_one("#trouble").display = False
        self._show_rates()
        self.set_interval(1 / FIGURES_HZ, self._redraw_figures)
        if self.live:
            self.set_interval(1.0, self._sample_rates)
        self._redraw_figures()

    # -- lifecycle --------------------------------------------------------------------------------

    def activate(self) -> None:
        """The tab is shown: start its engine the first time, and animate while visible."""
        self.shown = True
        if self.live and not self.started:
            self.started = True
            self._start_engine()
        if self.animating and self.live and self._ticker is None:
            self._ticker = self.set_interval(1 / FPS, self._frame)
        self._redraw_figures(force=True)

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
        # imported here, in a thread: aio_pika takes ~0.3 s to import and must not hold up the
        # first frame or the event loop (an import inside a coroutine would block the loop)
        sim = await asyncio.to_thread(importlib.import_module, "broker_sim.sim")
        engine: Engine = sim.Engine(self.scenario, self.settings)
        for observer in self.observers:
            engine.bus.subscribe(observer)
        engine.bus.subscribe(self.bridge)
        self.engine = engine
        await engine.start()

    async def stop_engine(self) -> None:
        """Stop the engine (it removes what it declared and restores tracing)."""
        engine, self.engine = self.engine, None
        if engine is not None:
            await engine.stop()

    # -- events -----------------------------------------------------------------------------------

    @on(FlowBatch)
    def _on_batch(self, message: FlowBatch) -> None:
        message.stop()
        self.feed(self.bridge.take(), redraw=False)

    def feed(self, events: list[FlowEvent], *, redraw: bool = True) -> None:
        """Fold events into the view (the bridge does this live; snapshot tests call it directly)."""
        self.view.apply(events)
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
        text.append("  delivered ", "dim").append(f"{t.delivered}")
        text.append("  acked ", "dim").append(f"{t.acked}")
        text.append("  nacked ", "dim").append(f"{t.nacked}")
        text.append("  redelivered ", "dim").append(f"{t.redelivered}", "bold" if t.redelivered else "")
        text.append("  lost ", "dim").append(f"{t.lost}")
        routed = " · ".join(f"{q.name} {t.routed[q.name]}" for q in self.scenario.queues)
        text.append("\nrouted  ", "dim").append(routed)
        text.append(f"   (traced {t.routed_traced}, inferred {t.routed_inferred})", "dim")
        groups = []
        for g in self.scenario.consumers:
            alive = len(view.roster.get(g.name, []))
            prefetch = view.prefetch.get(g.name, g.prefetch)
            mark = "▸" if g.name == self.canvas.selected_group else " "
            groups.append(
                f"{mark}{g.name}: {alive} consumer{'s' if alive != 1 else ''}, prefetch {prefetch or '∞'}"
            )
        text.append("\n" + "   ".join(groups))
        states = [f"{p}: {'paused' if view.paused.get(p) else f'{r:g}/s'}" for p, r in view.rates.items()]
        text.append("\nproducers  ", "dim").append(", ".join(states))
        text.append("   acked/s (last 60 s) →", "dim")
        return text

    def _show_trouble(self) -> None:
        panel = self.query_one("#trouble", Static)
        link = self.view.link
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
        panel.update(
            Text.assemble(
                (f"{head} (attempt {link.attempt})\n", "bold"),
                f"{detail}\n\n",
                ("How to get a broker:\n", "bold"),
                "  • docker compose up -d      starts RabbitMQ from this repository (credentials in .env)\n",
                "  • broker-sim --url amqp://USER:PASS@HOST:5672/VHOST    or set BROKER_SIM_URL\n\n",
                ("? help · Tab next pattern · q quit", "dim"),
            )
        )

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


def _set_rate(engine: Engine, *, producer: str, rate: float) -> None:
    engine.set_rate(producer, rate)
