"""Recording what happens in a session as a scenario file that replays it.

Every control (``StepApplied``) becomes a timeline step at its scenario time. Producers get a
``count`` equal to what they published at their own pace, so a replay publishes the same
messages (same seeded keys and headers, so the same routing); the recorded figures become
the replay's expectations.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from broker_sim.domain.events import FlowEvent, Published, Returned, Routed, StepApplied
from broker_sim.domain.scenario import Scenario
from broker_sim.domain.timeline import Expectation, Step


@dataclass
class Recorder:
    """An event-bus subscriber that turns a session into a replayable scenario."""

    scenario: Scenario
    steps: list[Step] = field(default_factory=list)
    published: Counter[str] = field(default_factory=Counter)
    routed: Counter[str] = field(default_factory=Counter)
    returned: int = 0
    untraced: bool = False

    def __call__(self, event: FlowEvent) -> None:
        """Fold one event in."""
        match event:
            case StepApplied(step=step):
                self.steps.append(step)
            case Published(producer=producer):
                self.published[producer] += 1
            case Returned():
                self.returned += 1
            case Routed(queues=queues, source=source):
                self.untraced |= source != "trace"
                self.routed.update(queues)
            case _:
                pass

    def to_scenario(self, duration: float, name: str | None = None) -> Scenario:
        """The recorded session as a scenario, with what was seen as its expectations."""
        bursts: Counter[str] = Counter()
        for s in self.steps:
            if s.action == "burst":
                bursts[s.producer] += s.count
        producers = tuple(
            replace(p, count=max(0, self.published[p.name] - bursts[p.name])) for p in self.scenario.producers
        )
        expectations = [
            Expectation("published", equals=sum(self.published.values())),
            Expectation("returned", equals=self.returned),
            Expectation("lost", equals=0),
        ]
        if not self.untraced:
            known = {q.name for q in self.scenario.queues}
            expectations += [
                Expectation("routed", queue=q, equals=n) for q, n in sorted(self.routed.items()) if q in known
            ]
        last = max((s.at for s in self.steps), default=0.0)
        return replace(
            self.scenario,
            name=name or f"{self.scenario.name}-recorded",
            title=f"{self.scenario.title} (recorded)",
            producers=producers,
            timeline=tuple(sorted(self.steps, key=lambda s: s.at)),
            expectations=tuple(expectations),
            duration=round(max(duration, last), 2),
        )
