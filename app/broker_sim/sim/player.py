"""Playing a scenario's timeline on an engine: steps at their times, at any speed, pausable."""

from __future__ import annotations

import asyncio
import contextlib

from broker_sim.domain.events import EngineProblem
from broker_sim.domain.scenario import Scenario
from broker_sim.sim.engine import Engine, EngineError

TICK = 0.05
STEP_GRACE = 120.0
"""Seconds a step still running when the story ends (a broker restart) may take to finish."""


class TimelinePlayer:
    """Applies a scenario's steps when the engine's scenario time reaches them.

    Time is the engine's scenario time, so speed changes and pauses (``Engine.hold``) move the
    whole story together: producers, work delays and the timeline.
    """

    def __init__(self, engine: Engine, scenario: Scenario | None = None) -> None:
        self.engine = engine
        self.scenario = scenario or engine.scenario
        self.next_index = 0
        self.finished = asyncio.Event()

    @property
    def duration(self) -> float:
        """How long the story runs: the scenario's duration, else its last step."""
        last = self.scenario.timeline[-1].at if self.scenario.timeline else 0.0
        return max(self.scenario.duration, last)

    @property
    def progress(self) -> float:
        """0.0 to 1.0 through the story."""
        if self.duration <= 0:
            return 1.0
        return min(1.0, self.engine.scenario_time() / self.duration)

    async def run(self) -> None:
        """Play until the duration is reached (steps that fail are reported, the story goes on)."""
        await self.engine.ready()
        steps = self.scenario.timeline
        while True:
            now = self.engine.scenario_time()
            while self.next_index < len(steps) and steps[self.next_index].at <= now:
                step = steps[self.next_index]
                self.next_index += 1
                try:
                    await self.engine.apply(step, "timeline")
                except EngineError as exc:
                    self.engine.emit(EngineProblem(f"t={step.at:g}s {step.describe()}: {exc}"))
            if now >= self.duration and self.next_index >= len(steps):
                break
            await asyncio.sleep(TICK)
        self.finished.set()

    def pause(self) -> None:
        """Freeze the story (timeline and producers)."""
        self.engine.hold(True)

    def resume(self) -> None:
        """Carry on from where it was paused."""
        self.engine.hold(False)

    async def finish(self, task: asyncio.Task[None], grace: float = STEP_GRACE) -> None:
        """End a ``run()`` task at the story's end, letting a step still in progress finish first.

        A broker restart on a busy machine can outlast the story; cancelling it halfway would
        leave the broker half started and the run's figures meaningless.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), grace)
        await self.cancel(task)

    async def cancel(self, task: asyncio.Task[None]) -> None:
        """Stop a running ``run()`` task."""
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
