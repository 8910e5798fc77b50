"""One scenario tab's widgets and their wiring: the flow diagram, the figures, the rate
sparkline, the log of the latest hops and the inspector.

What the tab runs and knows lives in its :class:`TabController` (no widgets); the tab runs the
controller's coroutines in workers (an :class:`EngineError` becomes a notification in words) and,
once per figures tick, sets its reactives from the controller's view: the figure lines are bound
to them (``data_bind``) and redraw only when their words change — never once per event.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import var
from textual.timer import Timer
from textual.widgets import RichLog, Sparkline, Static

from broker_sim.domain.events import FlowEvent
from broker_sim.domain.scenario import Scenario
from broker_sim.settings import Settings
from broker_sim.tui.bridge import EventBridge
from broker_sim.tui.broker_feed import BrokerFeed
from broker_sim.tui.canvas import FlowCanvas
from broker_sim.tui.figure_line import FigureLine
from broker_sim.tui.ids import widget_id
from broker_sim.tui.inspection import Inspection
from broker_sim.tui.inspection import inspect as inspect_station
from broker_sim.tui.inspector import StationPanel
from broker_sim.tui.outage import Outage
from broker_sim.tui.publish_form import PublishRequest
from broker_sim.tui.replay import StoryBar, StoryLine, step_speed
from broker_sim.tui.tab_controller import Control, NotStarted, TabController, next_station
from broker_sim.tui.view_state import LogLine, ScenarioView, short_id

if TYPE_CHECKING:
    from broker_sim.broker.handle import BrokerHandle
    from broker_sim.sim import Engine

FPS = 30
FIGURES_HZ = 8
"""Boxes, counters and log are redrawn at most this often: numbers need not change at 30 fps."""
STORY_HZ = 2
"""The replay bar (progress and live expectations) is redrawn this often."""
LOG_PER_REDRAW = 40
NARROW = 100
"""Below this width the tab drops its sparkline."""
INSPECTOR_MIN_ROWS = 8
"""The inspector's least height: on a short terminal it covers the diagram's bottom rows."""
LOG_KINDS = (
    "publish", "routed", "inferred", "returned", "failed", "delivered", "redelivered",
    "acked", "nacked", "abandoned", "consumer", "consumer-down", "purged", "link",
)  # fmt: skip


class ViewChanged(Message):
    """A tab's figures were redrawn: the app refreshes the header if the tab is on screen."""

    def __init__(self, tab: PatternTab) -> None:
        super().__init__()
        self.tab = tab


class PatternTab(Vertical):
    """Everything one scenario shows, fed by one engine through one bridge."""

    COMPONENT_CLASSES = {f"log--{kind}" for kind in LOG_KINDS}

    # What the figures show, set once per figures tick; the figure lines are bound to them.
    publishing: var[Text] = var(Text)
    consuming: var[Text] = var(Text)
    routed: var[Text] = var(Text)
    groups: var[Text] = var(Text)
    producers: var[Text] = var(Text)
    trouble: var[Text | None] = var(None)
    """The trouble panel's words (no broker, or the link in trouble), or None: hidden."""
    uploads: var[Text | None] = var(None)
    """Where uploads go (work-queue tab with ``--api-port``), or None: hidden."""
    inspection: var[Inspection | None] = var(None)
    """The selected station's facts while the inspector is open (the panel is bound to it)."""
    story_line: var[StoryLine | None] = var(None)
    """What the story bar shows while a story plays (the bar is bound to it)."""

    def __init__(self, scenario: Scenario, settings: Settings, *, live: bool = True) -> None:
        super().__init__(id=widget_id("tab-", scenario.name))
        self.scenario = scenario
        self.settings = settings
        self.live = live
        self.controller = TabController(scenario, settings)
        """What the tab runs and knows (engine, story, recorder, uploads, the view): no widgets."""
        self.bridge = EventBridge(lambda event: self.view.tally(event))
        self.shown = False
        self._ticker: Timer | None = None
        self.canvas = FlowCanvas(self.controller.view, id="canvas")
        self.broker_feed = BrokerFeed()
        """The inspected station as the broker's management API sees it."""

    @property
    def view(self) -> ScenarioView:
        """What the tab knows of the flow (the controller's; a story replaces it)."""
        return self.controller.view

    @property
    def outage(self) -> Outage:
        """How long the broker has been away, as this tab's engine saw it."""
        return self.controller.outage

    @property
    def animating(self) -> bool:
        """Tokens move frame by frame (else they jump to where the events put them)."""
        return self.controller.animating

    def compose(self) -> ComposeResult:
        """Story line, trouble panel, replay bar, diagram, figures and sparkline, log."""
        yield Static(self.scenario.description, classes="story")
        yield FigureLine(id="uploads").data_bind(words=PatternTab.uploads)
        yield FigureLine(id="trouble").data_bind(words=PatternTab.trouble)
        yield StoryBar(id="story-bar").data_bind(line=PatternTab.story_line)
        yield self.canvas
        with Horizontal(id="figures"):
            with Vertical(id="counters"):
                for line in (PatternTab.publishing, PatternTab.consuming, PatternTab.routed):
                    yield FigureLine().data_bind(words=line)
                for line in (PatternTab.groups, PatternTab.producers):
                    yield FigureLine().data_bind(words=line)
            yield Sparkline([0.0], id="rate")
        yield RichLog(id="log", max_lines=300, wrap=False, markup=False, auto_scroll=True)
        yield StationPanel(id="inspector").data_bind(inspection=PatternTab.inspection)

    def on_mount(self) -> None:
        """Figures redraw on a gentle timer; the rate history ticks once a second while live."""
        self.query_one("#log", RichLog).can_focus = False
        self.query_one("#story-bar").display = False
        self._show_rates()
        self.set_interval(1 / FIGURES_HZ, self._redraw_figures)
        if self.live:
            self.set_interval(1.0, self._sample_rates)
            self.set_interval(1 / STORY_HZ, self._show_story)
        self._redraw_figures()
        if self.controller.upload_port is not None:  # the broker may be known already
            self.ensure_started()

    def on_resize(self) -> None:
        """Below 100 columns the sparkline gives its room to the counters (they would wrap)."""
        self.set_class(self.size.width < NARROW, "-narrow")
        self._show_rates()
        self._place_inspector()

    def _place_inspector(self) -> None:
        # It covers counters and log below the diagram, which stays whole in view (a drawer at
        # the right hid the consumer groups, the stations most often inspected). It floats over
        # the tab: opening it lays nothing out again.
        panel = self.query_one(StationPanel)
        width, height = self.size
        below = self.canvas.region.bottom - self.region.y if self.canvas.region else 0
        top = min(max(0, below), max(0, height - INSPECTOR_MIN_ROWS))
        panel.styles.offset = (0, top)
        panel.styles.width, panel.styles.height = width, max(INSPECTOR_MIN_ROWS, height - top)

    # -- lifecycle --------------------------------------------------------------------------------

    def activate(self) -> None:
        """The tab is shown: start its engine the first time, and animate while visible."""
        self.shown = True
        self.ensure_started()
        if self.animating and self.live and self._ticker is None:
            self._ticker = self.set_interval(1 / FPS, self._frame)
        self._redraw_figures(force=True)

    def ensure_started(self) -> None:
        """Start the live engine if it has not started and the broker is known (and the tab is
        mounted: the app mounts hidden tabs after the first frame)."""
        run = self.controller
        if self.live and self.is_mounted and not run.started and run.broker is not None:
            run.started = True
            self._start_engine()

    def broker_ready(self, broker: BrokerHandle) -> None:
        """The app found or started the broker: engines may start (this one now, if shown)."""
        self.controller.broker = broker
        if self.shown or self.controller.upload_port is not None:
            self.ensure_started()

    def broker_failed(self, reason: str) -> None:
        """No broker could be started: say why on the panel."""
        self.controller.broker_problem = reason
        self.trouble = self.controller.trouble()

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
        engine = await self.controller.new_engine(self.bridge)
        await self._open_uploads(engine)

    async def _open_uploads(self, engine: Engine) -> None:
        if (port := self.controller.upload_port) is None:
            return
        try:
            words = await self.controller.open_uploads(engine, port)
        except OSError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        self.uploads = Text(words)

    async def stop_engine(self) -> None:
        """Stop the engine (it removes what it declared and restores tracing) and its uploads."""
        await self.controller.stop_engine()

    # -- the story (replay) -----------------------------------------------------------------------

    def play_story(self) -> None:
        """Play this scenario's story from the beginning on a fresh engine (again if it runs)."""
        if self.controller.broker is None:
            self.notify("the broker is not ready yet", severity="warning")
            return
        self.controller.started = True
        self._play_story()

    @work(group="engine", exclusive=True, exit_on_error=False)
    async def _play_story(self) -> None:
        await self.controller.stop_engine()
        self._reset_view()
        story = await self.controller.new_story(self.bridge, self.view.tally)
        await self._open_uploads(story.engine)
        self.query_one("#story-bar").display = True
        self._show_story()
        await story.play(self._show_story)
        verdict = "every expectation held" if story.passed else "an expectation FAILED"
        self.notify(f"story over: {verdict}", title=self.scenario.title, timeout=6)

    def _reset_view(self) -> None:
        self.bridge.take()  # the old engine's last events (its "closed") belong to the old view
        self.canvas.show(self.controller.reset_view())
        self.query_one("#log", RichLog).clear()
        self._redraw_figures(force=True)
        self._show_rates()

    def _show_story(self) -> None:
        if self.controller.story is not None and self.shown:
            self.story_line = self.query_one(StoryBar).line_of(self.controller.story)

    def story_speed(self, step: int) -> None:
        """One step up or down the speed ladder (a story must be playing)."""
        if (story := self.controller.story) is None:
            self.notify("P plays this tab's story first; < > then change its speed", severity="warning")
            return
        story.set_speed(step_speed(story.speed, step))
        self._show_story()

    def toggle_story_pause(self) -> None:
        """Pause or resume the story (producers and timeline freeze together)."""
        if (story := self.controller.story) is None:
            self.notify("P plays this tab's story first; p then pauses it", severity="warning")
            return
        story.toggle_pause()
        self._show_story()

    # -- recording --------------------------------------------------------------------------------

    @work(group="save", exclusive=True, exit_on_error=False)
    async def save_session(self) -> None:
        """Save what happened on this engine as a scenario file (in a worker)."""
        title = self.scenario.title
        try:
            path = await self.controller.save(
                self.view.tally, lambda words: self.notify(words, title=title, timeout=4)
            )
        except NotStarted as exc:
            self.notify(str(exc), severity="warning")
            return
        self.notify(f"saved {path}\nreplay it: broker-sim run {path}", title=title, timeout=10)

    # -- events -----------------------------------------------------------------------------------

    def _take_events(self) -> None:
        if events := self.bridge.take():
            self.feed(events, redraw=False, counted=True)

    def feed(self, events: list[FlowEvent], *, redraw: bool = True, counted: bool = False) -> None:
        """Fold events into the view (the frame and figures timers do this live with what the
        bridge buffered and counted; snapshot tests call it directly)."""
        self.controller.fold(events, time.monotonic(), counted=counted)
        # the frame ticker (or, animation off, the figures timer) repaints: a burst of batches
        # must not paint the canvas once per batch
        self.canvas.tokens_moved(repaint=False)
        if redraw:
            self._redraw_figures(force=True)

    def _frame(self) -> None:
        self._take_events()
        if self.view.tokens.step():
            self.canvas.tokens_moved()

    def _sample_rates(self) -> None:
        self.view.sample_rates()
        self._show_rates()
        if self.inspecting is not None:  # its rates moved, and the broker is due to be asked again
            self.controller.dirty = True

    def _show_rates(self) -> None:
        # an all-zero sparkline draws as a solid block: show it once something has been acked
        rate = self.query_one("#rate", Sparkline)
        rate.data = [float(n) for n in self.view.acked_history]
        rate.display = any(self.view.acked_history) and not self.has_class("-narrow")

    def set_animation(self, on: bool) -> None:
        """Animation on or off; off, tokens jump to where the events put them."""
        self.controller.animating = on
        if not on:
            self._stop_ticker()
            self.view.tokens.settle()
            self.canvas.tokens_moved()
        elif self.shown:
            self.activate()

    # -- drawing ----------------------------------------------------------------------------------

    def _redraw_figures(self, force: bool = False) -> None:
        self._take_events()
        run = self.controller
        if not (run.dirty or force):
            return
        run.dirty = False
        self.canvas.redraw()
        self._show_inspection()
        # once per tick: each bound line compares its words and repaints only if they changed
        figures = run.figures(self.canvas.selected_group, narrow=self.has_class("-narrow"))
        self.publishing, self.consuming, self.routed = figures.publishing, figures.consuming, figures.routed
        self.groups, self.producers = figures.groups, figures.producers
        self.trouble = run.trouble()
        lines = run.view.drain_log()
        if lines:
            self._write_log(lines)
        self.post_message(ViewChanged(self))

    def _write_log(self, lines: list[LogLine]) -> None:
        # one write per redraw: each write lays the log out (and the screen) again
        text = Text()
        if len(lines) > LOG_PER_REDRAW:
            text.append(f"… {len(lines) - LOG_PER_REDRAW} more lines\n", style="dim")
            lines = lines[-LOG_PER_REDRAW:]
        for i, line in enumerate(lines):
            style = self.get_component_rich_style(f"log--{line.kind}", partial=True)
            text.append(line.text + ("\n" if i + 1 < len(lines) else ""), style=style)
        self.query_one("#log", RichLog).write(text)

    # -- controls ---------------------------------------------------------------------------------

    def control(self, action: Control, done: str = "") -> None:
        """Run an engine control in a worker; its refusal is shown in words."""
        self._control(action, done)

    @work(group="control", exit_on_error=False)
    async def _control(self, action: Control, done: str) -> None:
        try:
            result = await self.controller.control(action)
        except NotStarted as exc:
            self.notify(str(exc), severity="warning")
            return
        except ValueError as exc:
            self.notify(str(exc), title=self.scenario.title, severity="warning")
            return
        if done:
            self.notify(done.format(result=result), title=self.scenario.title, timeout=3)

    async def send(self, request: PublishRequest) -> str:
        """Publish a message typed in the form; ValueError (in words) when the engine refuses."""
        mid = await self.controller.send(request)
        self.notify(f"published {short_id(mid)}: watch it go", title=self.scenario.title, timeout=3)
        return mid

    # -- the inspector ----------------------------------------------------------------------------

    def select(self, step: int) -> str | None:
        """Select the next (+1) or previous (-1) station in reading order and inspect it."""
        station = next_station(self.canvas.diagram.selectable(), self.canvas.selected, step)
        if station is not None:
            self.pick(station)
        return station

    def pick(self, selection: str) -> None:
        """Show one station in the inspector; a group or consumer becomes the group keys act on."""
        self.canvas.select(selection)
        kind, _, name = selection.partition(":")
        if kind == "g":
            self.canvas.selected_group = name
        elif kind == "c" and (group := self.canvas.diagram.group_of.get(name)):
            self.canvas.selected_group = group
        self.query_one(StationPanel).add_class("-open")
        self._place_inspector()
        self._show_inspection()

    def close_inspector(self) -> bool:
        """Close the inspector; False when it was not open."""
        panel = self.query_one(StationPanel)
        if not panel.has_class("-open"):
            return False
        panel.remove_class("-open")
        self.canvas.select(None)
        return True

    @property
    def inspecting(self) -> str | None:
        """The station the open inspector shows, or None."""
        return self.canvas.selected if self.query_one(StationPanel).has_class("-open") else None

    def _show_inspection(self) -> None:
        if (selection := self.inspecting) is None:
            return
        broker = self.controller.broker
        side = self.broker_feed.side(broker, selection)
        self.inspection = inspect_station(self.view, selection, side)
        engine = self.controller.engine
        if broker is not None and engine is not None and self.broker_feed.due(selection):
            self._read_broker(broker, engine, selection)

    @work(group="inspect", exclusive=True, exit_on_error=False)
    async def _read_broker(self, broker: BrokerHandle, engine: Engine, selection: str) -> None:
        await self.broker_feed.read(broker, engine, selection)
        self.controller.dirty = True  # the next figures redraw shows it

    @on(FlowCanvas.Picked)
    def _picked(self, message: FlowCanvas.Picked) -> None:
        message.stop()
        self.pick(message.selection)

    @on(FlowCanvas.Scaled)
    def _scaled(self, message: FlowCanvas.Scaled) -> None:
        message.stop()
        group, step = message.group, message.step
        self.canvas.selected_group = group
        self.control(lambda e: e.add_consumer(group) if step > 0 else e.remove_consumer(group))

    def cycle_group(self) -> str | None:
        """Select the next consumer group (the one + - f k act on)."""
        if (nxt := self.controller.next_group(self.canvas.selected_group)) is not None:
            self.canvas.selected_group = nxt
            self._redraw_figures(force=True)
        return nxt

    def scale_rates(self, factor: float) -> None:
        """Multiply every producer's rate (within sane bounds)."""
        rates = self.controller.scaled_rates(factor)
        for name, rate in rates.items():
            self.control(functools.partial(_set_rate, producer=name, rate=rate))
        if rates:
            self.notify(", ".join(f"{n}: {r:g} msg/s" for n, r in rates.items()), timeout=2)


def _set_rate(engine: Engine, *, producer: str, rate: float) -> None:
    engine.set_rate(producer, rate)
