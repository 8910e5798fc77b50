"""What one tab runs and knows, with no widgets: its engine's lifecycle, uploads, the story, the
recorder, saving a session, controls and hand-typed messages; the view folded from the engine's
events, and the words its figures show.

A plain class (no Textual): :class:`~broker_sim.tui.pattern_tab.PatternTab` runs these
coroutines in its workers and, once per figures tick, hands the widgets what
:meth:`TabController.figures` says; the tab's knowledge of the flow itself lives in
:class:`~broker_sim.tui.view_state.ScenarioView`, fed by the bridge.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from broker_sim.domain.events import FlowEvent, LinkState
from broker_sim.domain.ledger import Ledger
from broker_sim.domain.recording import Recorder
from broker_sim.domain.scenario import Scenario
from broker_sim.domain.tally import Tally
from broker_sim.settings import Settings
from broker_sim.tui.lazy import load_engine, load_uploads
from broker_sim.tui.outage import Outage
from broker_sim.tui.publish_form import PublishRequest
from broker_sim.tui.replay import Story
from broker_sim.tui.session import save_session
from broker_sim.tui.view_state import ScenarioView

if TYPE_CHECKING:
    from broker_sim.broker.handle import BrokerHandle
    from broker_sim.sim import Engine
    from broker_sim.sim.uploads import UploadServer

Control = Callable[["Engine"], Awaitable[object] | object]
Say = Callable[[str], None]
MIN_RATE, MAX_RATE = 0.25, 2000.0
TROUBLE = {LinkState.UNREACHABLE, LinkState.AUTH_REFUSED, LinkState.LOST, LinkState.RECONNECTING}


@dataclass(frozen=True)
class Figures:
    """The words under the diagram, one line each, as one figures tick sees them.

    Equal lines compare equal (``rich.text.Text`` compares text and styles), so a widget bound to
    one of them repaints only when its words changed.
    """

    publishing: Text
    consuming: Text
    routed: Text
    groups: Text
    producers: Text


class NotStarted(Exception):
    """The tab's engine has not started yet: the words say so."""


class TabController:
    """One tab's engine and everything that runs beside it, for one scenario."""

    def __init__(self, scenario: Scenario, settings: Settings) -> None:
        self.scenario = scenario
        self.settings = settings
        self.engine: Engine | None = None
        self.broker: BrokerHandle | None = None
        """The broker, once the app has found or started it; engines start only then."""
        self.started = False
        self.recorder: Recorder | None = None
        self.story: Story | None = None
        self.upload_port: int | None = None
        """Set by the app for the work-queue tab with ``--api-port``: serve uploads into this engine."""
        self.uploads: UploadServer | None = None
        self.saved: Path | None = None
        """The latest file ``S`` wrote."""
        self.broker_problem = ""
        """Why no broker could be found or started (shown on the panel), or ""."""
        self.observers: list[Callable[[FlowEvent], None]] = []
        """Extra engine-bus subscribers, added before each engine starts (tests count with them)."""
        self.view = ScenarioView(scenario)
        """What the tab knows of the flow, folded from the engine's events."""
        self.outage = Outage()
        self.animating = settings.animation
        self.dirty = True
        """Events came (or the broker answered) since the figures were last drawn."""

    # -- the view ---------------------------------------------------------------------------------

    def fold(self, events: list[FlowEvent], now: float, *, counted: bool = False) -> None:
        """Fold a batch of events into the view (``counted``: the tally has them already, as
        the bridge counts as they come); the next figures tick draws them."""
        self.view.apply(events, counted=counted)
        self.outage.apply(events, now)
        if not self.animating:
            self.view.tokens.settle()
        self.dirty = True

    def reset_view(self) -> ScenarioView:
        """Forget the flow so far (a story starts on a fresh engine): the new, empty view."""
        self.view = ScenarioView(self.scenario)
        self.outage = Outage()
        self.dirty = True
        return self.view

    def figures(self, selected_group: str | None, narrow: bool) -> Figures:
        """The counters, routed, consumer-group and producer lines, from the view."""
        t, view = self.view.tally, self.view
        publishing = Text()
        publishing.append("published ", "dim").append(f"{t.published}")
        publishing.append("  confirmed ", "dim").append(f"{t.confirmed}")
        publishing.append("  returned ", "dim").append(f"{t.returned}", "bold" if t.returned else "")
        if t.publish_refused:  # only where a queue refuses publishes (x-overflow reject-publish)
            publishing.append("  nacked by the broker ", "dim").append(f"{t.publish_refused}", "bold")
        # the publisher's side, then the consumers': two short lines rather than one that wraps
        # mid-pair ("redelivered" / "0") beside the sparkline
        consuming = Text()
        consuming.append("delivered ", "dim").append(f"{t.delivered}")
        consuming.append("  acked ", "dim").append(f"{t.acked}")
        consuming.append("  nacked ", "dim").append(f"{t.nacked}")
        consuming.append("  redelivered ", "dim").append(f"{t.redelivered}", "bold" if t.redelivered else "")
        consuming.append("  lost ", "dim").append(f"{t.lost}")
        if t.purged:  # dropped on purpose (e): said apart from lost
            consuming.append("  purged ", "dim").append(f"{t.purged}", "bold")
        routed = Text().append("routed  ", "dim")
        routed.append(" · ".join(f"{q.name} {t.routed[q.name]}" for q in self.scenario.queues))
        routed.append(f"   (traced {t.routed_traced}, inferred {t.routed_inferred})", "dim")
        if view.leftover:
            held = ", ".join(f"{q} {n}" for q, n in view.leftover.items())
            routed.append(f"   + from an earlier run: {held}", "dim")
        groups = []
        for g in self.scenario.consumers:
            alive = len(view.roster.get(g.name, []))
            prefetch = view.prefetch.get(g.name, g.prefetch)
            mark = "▸" if g.name == selected_group else " "
            groups.append(
                f"{mark}{g.name}: {alive} consumer{'s' if alive != 1 else ''}, prefetch {prefetch or '∞'}"
            )
        states = [f"{p}: {view.stopped(p) or f'{r:g}/s'}" for p, r in view.rates.items()]
        producers = Text().append("producers  ", "dim").append(", ".join(states))
        if not narrow:
            producers.append("   acked/s (last 60 s) →", "dim")
        return Figures(publishing, consuming, routed, Text("   ".join(groups)), producers)

    def trouble(self) -> Text | None:
        """What the trouble panel says (no broker, or the link in trouble), or None: all is well."""
        if self.broker_problem:
            return trouble_text("Could not start the broker", self.broker_problem)
        link = self.view.link
        if link is None or link.state not in TROUBLE:
            return None
        if link.state == LinkState.AUTH_REFUSED:
            head = "The broker refused the login"
        elif link.state in (LinkState.LOST, LinkState.RECONNECTING):
            head = "Connection to the broker lost: reconnecting by itself"
        else:
            head = "No broker answers: retrying by itself"
        detail = link.detail if link.state != LinkState.RECONNECTING else f"attempt {link.attempt}"
        return trouble_text(f"{head} (attempt {link.attempt})", detail)

    def scaled_rates(self, factor: float) -> dict[str, float]:
        """Every producer's rate times ``factor``, within sane bounds."""
        return {n: min(MAX_RATE, max(MIN_RATE, r * factor)) for n, r in self.view.rates.items()}

    def next_group(self, current: str | None) -> str | None:
        """The consumer group after ``current`` (the first when none), or None: no consumers."""
        names = [g.name for g in self.scenario.consumers]
        if not names:
            return None
        return names[(names.index(current) + 1) % len(names)] if current in names else names[0]

    # -- the engine -------------------------------------------------------------------------------

    async def new_engine(
        self,
        bridge: Callable[[FlowEvent], None],
        *,
        story: bool = False,
        also: tuple[Callable[[FlowEvent], None], ...] = (),
    ) -> Engine:
        """Start a fresh engine whose events go to the bridge (and the recorder, observers, ``also``)."""
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
        subscribers: list[Callable[[FlowEvent], None]] = [*self.observers, recorder, bridge, *also]
        for subscriber in subscribers:
            engine.bus.subscribe(subscriber)
        self.engine = engine
        await engine.start()
        return engine

    async def open_uploads(self, engine: Engine, port: int) -> str:
        """Serve uploads into the engine: the line to show, or OSError in words when the port is taken."""
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
            raise OSError(
                f"uploads: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); "
                "start broker-sim with another --api-port"
            ) from None
        self.uploads = server
        return f"uploads: curl -F image=@photo.png http://127.0.0.1:{server.port}/jobs"

    async def stop_engine(self) -> None:
        """Stop the engine (it removes what it declared and restores tracing) and its uploads."""
        engine, self.engine = self.engine, None
        uploads, self.uploads = self.uploads, None
        if uploads is not None:
            await uploads.stop()
        if engine is not None:
            await engine.stop()

    async def new_story(self, bridge: Callable[[FlowEvent], None], tally: Tally) -> Story:
        """Stop the live engine and set up the scenario's story on a fresh one (counted in ``tally``)."""
        self.story = None
        await self.stop_engine()
        ledger = Ledger()
        engine = await self.new_engine(bridge, story=True, also=(ledger,))
        self.story = Story(engine, tally, ledger)
        return self.story

    async def save(self, tally: Tally, say: Say) -> Path:
        """Save what happened on this engine as a scenario file; NotStarted before it ran."""
        if self.engine is None or self.recorder is None:
            raise NotStarted("this tab's engine has not started yet: nothing to save")
        folder = self.settings.scenarios_dir or Path.cwd()
        held = self.story is not None and self.story.phase in ("paused", "settling", "done")
        path = await save_session(self.engine, self.recorder, tally, folder, say, resume=not held)
        self.saved = path
        return path

    async def control(self, action: Control) -> object:
        """Run one engine control; NotStarted, or ValueError in words when the engine refuses."""
        from broker_sim.sim import EngineError

        if self.engine is None:
            raise NotStarted("this tab's engine has not started yet")
        try:
            result = action(self.engine)
            if inspect.isawaitable(result):
                result = await result
        except EngineError as exc:
            raise ValueError(str(exc)) from None
        return result

    async def send(self, request: PublishRequest) -> str:
        """Publish a message typed in the form; ValueError (in words) when the engine refuses."""
        from broker_sim.sim import EngineError

        if self.engine is None:
            raise ValueError("this tab's engine has not started yet")
        try:
            return await self.engine.publish_one(
                request.exchange,
                request.routing_key,
                request.body,
                headers=request.headers,
                persistent=request.persistent,
            )
        except EngineError as exc:
            raise ValueError(str(exc)) from None


def next_station(order: list[str], current: str | None, step: int) -> str | None:
    """The station ``step`` places after (+1) or before (-1) ``current`` in reading order."""
    if not order:
        return None
    here = order.index(current) if current in order else (-1 if step > 0 else 0)
    return order[(here + step) % len(order)]


def trouble_text(head: str, detail: str) -> Text:
    """The trouble panel's words: what went wrong, and how to get a broker."""
    return Text.assemble(
        (f"{head}\n", "bold"),
        f"{detail}\n\n",
        ("How to get a broker:\n", "bold"),
        "  • docker compose up -d      starts RabbitMQ from this repository (credentials in .env)\n",
        "  • broker-sim --url amqp://USER:PASS@HOST:5672/VHOST    or set BROKER_SIM_URL\n",
        "  • broker-sim --broker embedded    broker-sim's own broker, nothing to install\n\n",
        ("? help · Tab next pattern · q quit", "dim"),
    )
