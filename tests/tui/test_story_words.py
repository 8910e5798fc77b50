"""The story bar's words for loss while a story plays: not yet known, unless lost for good."""

from __future__ import annotations

from pathlib import Path

from broker_sim.domain.events import Abandoned, Acked, Published
from broker_sim.domain.ledger import Ledger
from broker_sim.domain.scenario import ConsumerGroupSpec, QueueSpec, Scenario
from broker_sim.domain.tally import Tally
from broker_sim.domain.timeline import Expectation
from broker_sim.settings import Settings
from broker_sim.sim import Engine
from broker_sim.tui.replay import Story, verdict_text

SCENARIO = Scenario(
    name="s",
    title="S",
    queues=(QueueSpec("q"),),
    consumers=(ConsumerGroupSpec("c", "q", ack="auto"),),
    expectations=(Expectation("lost", equals=0), Expectation("acked", at_least=1)),
)


def test_loss_waits_for_the_end_unless_an_auto_ack_consumer_died_holding_a_message(tmp_path: Path) -> None:
    # an engine that is never started: the story bar only reads its scenario
    engine = Engine(SCENARIO, Settings(url="amqp://guest:guest@127.0.0.1:1/", data_dir=tmp_path))
    tally, ledger = Tally(), Ledger()
    story = Story(engine, tally, ledger)
    story.phase = "playing"
    for event in (Published("m1", "p", "", "q"), Published("m2", "p", "", "q"), Acked("m1", "q", "c-1", 1.0)):
        tally(event)
        ledger(event)
    words = verdict_text(story).plain
    assert "… lost = 0 (checked when the story ends)" in words
    assert "✓ acked ≥ 1 (now 1)" in words
    ledger(Abandoned("m2", "q", "c-1", redelivered=False))  # auto-ack: the broker cannot give it back
    assert "✗ lost = 0 (now 1 lost for good)" in verdict_text(story).plain
