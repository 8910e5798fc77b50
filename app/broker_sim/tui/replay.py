"""Playing a tab's story (its scenario timeline) and the bar that shows it.

:class:`Story` runs a :class:`TimelinePlayer` on a fresh engine the way ``broker-sim run`` does
(the same length, the same settling at the end), so the verdict on screen is the headless verdict.
:class:`StoryBar` shows scenario time / duration, the speed, and each expectation with ✓ / ✗ and
its current value, refreshed twice a second (not per event).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.widgets import ProgressBar, Static

from broker_sim.domain.ledger import Ledger
from broker_sim.domain.report import Verdict, build_report
from broker_sim.domain.tally import Tally
from broker_sim.domain.timeline import AT_END
from broker_sim.tui.lazy import load_engine

if TYPE_CHECKING:
    from broker_sim.sim import Engine

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 10.0)
DEFAULT_LENGTH = 10.0
"""Seconds a story without a duration or timeline runs (as ``broker-sim run``)."""
TICK = 0.1


def step_speed(current: float, step: int) -> float:
    """The next speed up (``step`` = 1) or down (-1) the ladder 0.25x … 10x."""
    below = [s for s in SPEEDS if s < current]
    above = [s for s in SPEEDS if s > current]
    if step > 0:
        return above[0] if above else SPEEDS[-1]
    return below[-1] if below else SPEEDS[0]


class Story:
    """One play-through of a scenario's timeline on an engine that started with it."""

    def __init__(self, engine: Engine, tally: Tally, ledger: Ledger) -> None:
        self.engine = engine
        self.tally = tally
        self.ledger = ledger
        """On the engine's bus from before it started: it must see the first TracingChanged."""
        self.phase = "connecting"
        """connecting, playing, paused, settling (producers held, in-flight finishing) or done."""
        self.verdicts: list[Verdict] = []

    @property
    def speed(self) -> float:
        """The replay speed."""
        return self.engine.speed

    @property
    def length(self) -> float:
        """Seconds of scenario time the story runs."""
        scenario = self.engine.scenario
        last = scenario.timeline[-1].at if scenario.timeline else 0.0
        return max(scenario.duration, last) or DEFAULT_LENGTH

    @property
    def elapsed(self) -> float:
        """Scenario seconds played so far."""
        return min(self.length, self.engine.scenario_time())

    @property
    def passed(self) -> bool:
        """Every expectation holds (as of the latest :meth:`check`)."""
        return all(v.passed for v in self.verdicts)

    def check(self) -> list[Verdict]:
        """The expectations against the figures now."""
        self.verdicts = build_report(self.engine.scenario, self.tally, self.ledger).verdicts
        return self.verdicts

    def set_speed(self, speed: float) -> None:
        """Replay faster or slower (producers, work and timeline together)."""
        self.engine.set_speed(speed)

    def toggle_pause(self) -> bool:
        """Pause or resume the story; returns True when it is now paused (no-op once it ends)."""
        if self.phase not in ("playing", "paused"):
            return self.phase == "paused"
        self.phase = "playing" if self.phase == "paused" else "paused"
        self.engine.hold(self.phase == "paused")
        return self.phase == "paused"

    async def play(self, changed: Callable[[], None]) -> None:
        """Run the timeline to its end, settle the flow, then take the final verdicts."""
        await asyncio.to_thread(load_engine)
        from broker_sim.sim.player import TimelinePlayer
        from broker_sim.sim.settle import settle

        await self.engine.ready()
        self.phase = "playing"
        changed()
        player = TimelinePlayer(self.engine)
        task = asyncio.create_task(player.run(), name=f"story {self.engine.scenario.name}")
        try:
            while self.engine.scenario_time() < self.length:  # noqa: ASYNC110 - scenario time, not an event
                await asyncio.sleep(TICK)
        finally:
            await player.cancel(task)
        self.phase = "settling"
        changed()
        await settle(self.engine, self.tally)
        self.engine.hold(True)
        self.check()
        self.phase = "done"
        changed()


PHASE_WORDS = {
    "connecting": "connecting…",
    "playing": "playing",
    "paused": "PAUSED (p resumes)",
    "settling": "story over: letting the messages in flight finish…",
    "done": "done: producers held (P plays it again)",
}


@dataclass(frozen=True)
class StoryLine:
    """What the story bar shows, taken from the story twice a second: compared with the last
    one, so the bar redraws only when something in it changed."""

    length: float
    elapsed: float
    speed: float
    phase: str
    verdicts: Text


class StoryBar(Vertical):
    """The replay line of a tab: progress, speed, phase, and the expectations live (bound to
    the tab's ``story_line``)."""

    line: var[StoryLine | None] = var(None)

    COMPONENT_CLASSES: ClassVar[set[str]] = {"story--pass", "story--fail", "story--pending"}

    DEFAULT_CSS = """
    StoryBar { height: auto; padding: 0 1; }
    StoryBar > Horizontal { height: 1; }
    StoryBar ProgressBar { width: 40; }
    StoryBar #story-label { width: auto; padding: 0 1 0 0; color: $accent; text-style: bold; }
    StoryBar #story-time { width: auto; padding: 0 1; }
    StoryBar #story-verdicts { height: auto; }
    StoryBar > .story--pass { color: $success; }
    StoryBar > .story--fail { color: $error; text-style: bold; }
    StoryBar > .story--pending { color: $warning; }
    """

    def compose(self) -> ComposeResult:
        """A progress bar with its words, and the expectations under it."""
        with Horizontal():
            yield Static("story", id="story-label")
            yield ProgressBar(total=100, show_eta=False, show_percentage=False, id="story-progress")
            yield Static("", id="story-time")
        yield Static("", id="story-verdicts")

    def line_of(self, story: Story) -> StoryLine:
        """What the bar would show for the story now, in the bar's colours."""
        good = self.get_component_rich_style("story--pass", partial=True)
        failed = "story--fail" if story.phase == "done" else "story--pending"
        bad = self.get_component_rich_style(failed, partial=True)
        verdicts = verdict_text(story, good, bad)
        return StoryLine(story.length, story.elapsed, story.speed, story.phase, verdicts)

    def watch_line(self, line: StoryLine | None) -> None:
        """Redraw: the tab sets a new line twice a second while a story plays, and on changes."""
        if line is None:
            return
        bar = self.query_one("#story-progress", ProgressBar)
        bar.update(total=line.length, progress=line.elapsed)
        self.query_one("#story-time", Static).update(
            f"{line.elapsed:5.1f} / {line.length:g} s  at {line.speed:g}x  {PHASE_WORDS[line.phase]}   "
            "< > speed · p pause · P again"
        )
        self.query_one("#story-verdicts", Static).update(line.verdicts)


def verdict_text(story: Story, good: Style | str = "", bad: Style | str = "") -> Text:
    """Each expectation with ✓ / ✗ and its value now; the final verdict once the story is done.

    While the story plays the figures are "so far": an ``at least`` grows towards its bound.
    Loss is only known once the messages in flight have settled, so until the story is done a
    ``lost`` expectation is shown as waiting, with the messages not yet settled; so are the other
    metrics known only at the end (``AT_END``), with the answers still awaited.
    """
    text = Text()
    expectations = story.engine.scenario.expectations
    if not expectations:
        return text.append("this scenario sets no expectations", "dim")
    done = story.phase == "done"
    verdicts = story.verdicts if done else story.check()
    text.append("expected: " if done else "so far:   ", "dim")
    for expectation, verdict in zip(expectations, verdicts, strict=True):
        if not done and expectation.metric == "lost":
            # Only a message an auto-ack consumer died holding is lost for good before the end;
            # the rest may still be on its way.
            ledger = story.ledger.lost_on_delivery
            gone = ledger[expectation.queue] if expectation.queue else sum(ledger.values())
            if gone and not expectation.holds(gone):
                text.append("✗ ", bad).append(f"{verdict.expectation} (now {gone} lost for good)   ")
            else:
                text.append("… ", "dim").append(f"{verdict.expectation} (checked when the story ends)   ")
            continue
        if not done and expectation.metric in AT_END:  # an answer may still be on its way
            text.append("… ", "dim").append(
                f"{verdict.expectation} (checked when the story ends; {verdict.value} awaited now)   "
            )
            continue
        text.append("✓ " if verdict.passed else "✗ ", good if verdict.passed else bad)
        text.append(f"{verdict.expectation} ({'got' if done else 'now'} {verdict.value})   ")
    if story.phase == "done":
        result = "every expectation held" if story.passed else "an expectation FAILED"
        text.append(f"\nfinal verdict: {result}", good if story.passed else bad)
    return text
