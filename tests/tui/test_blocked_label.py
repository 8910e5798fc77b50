"""A producer whose connection the broker blocked says so on its label and in the log."""

from __future__ import annotations

from broker_sim.domain.events import ProducerState
from broker_sim.domain.scenario import ProducerSpec, QueueSpec, Scenario
from broker_sim.tui.view_state import ScenarioView

SCENARIO = Scenario(
    "s", "S", queues=(QueueSpec("q"),), producers=(ProducerSpec("p", "", routing_keys=("q",)),)
)


def test_a_blocked_producer_shows_the_brokers_reason_until_unblocked() -> None:
    view = ScenarioView(SCENARIO)
    view.apply([ProducerState("p", 2.0, paused=True, blocked="low on memory")])
    assert view.stopped("p") == "blocked: low on memory"  # above "paused": nothing gets through
    assert any("blocked by the broker: low on memory" in line.text for line in view.drain_log())
    view.apply([ProducerState("p", 2.0, paused=False)])
    assert view.stopped("p") == ""
    assert any("p: unblocked" in line.text for line in view.drain_log())
