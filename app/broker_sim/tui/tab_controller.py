"""What one tab runs, with no widgets: its engine's lifecycle, uploads, the story, the recorder,
saving a session, controls and hand-typed messages.

A plain class (no Textual): :class:`~broker_sim.tui.pattern_tab.PatternTab` runs these
coroutines in its workers and draws what they leave behind; the tab's knowledge of the flow
itself lives in :class:`~broker_sim.tui.view_state.ScenarioView`, fed by the bridge.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from broker_sim.domain.events import FlowEvent
from broker_sim.domain.ledger import Ledger
from broker_sim.domain.recording import Recorder
from broker_sim.domain.scenario import Scenario
from broker_sim.domain.tally import Tally
from broker_sim.settings import Settings
from broker_sim.tui.lazy import load_engine, load_uploads
from broker_sim.tui.publish_form import PublishRequest
from broker_sim.tui.replay import Story
from broker_sim.tui.session import save_session

if TYPE_CHECKING:
    from broker_sim.broker.handle import BrokerHandle
    from broker_sim.sim import Engine
    from broker_sim.sim.uploads import UploadServer

Control = Callable[["Engine"], Awaitable[object] | object]
Say = Callable[[str], None]


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
