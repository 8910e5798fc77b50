"""A recorded session, saved as a scenario file and replayed, reproduces the same counts."""

from __future__ import annotations

from pathlib import Path

from broker_sim.domain.events import Routed
from broker_sim.domain.recording import Recorder
from broker_sim.domain.scenario_file import load_scenario
from broker_sim.domain.scenario_writer import scenario_to_toml
from broker_sim.headless import run_scenario
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.settings import Settings
from tests.support import running


async def test_record_save_replay_reproduces_the_counts(settings: Settings, tmp_path: Path) -> None:
    routing = load_scenario(builtin_scenarios_dir() / "3-routing.toml")
    recorder = Recorder(routing)
    async with running(routing, settings, subscribers=(recorder,)) as (engine, w):
        await w.until(lambda: w.tally.published >= 5, "some traffic")
        await engine.burst("app", 12)
        await engine.publish_one("direct-logs", "critical", "[critical] app: by hand")
        await engine.scale("console", 2)
        engine.set_rate("app", 12)
        await w.until(lambda: w.tally.published >= 50, "50 published")
        engine.pause()
        await w.until(
            lambda: len(w.of(Routed)) == w.tally.published == w.tally.confirmed + w.tally.returned,
            "every publish settled and traced",
        )
        duration = engine.scenario_time()
    recorded = recorder.to_scenario(duration)
    path = tmp_path / "session.toml"
    path.write_text(scenario_to_toml(recorded, "recorded in a test"))

    replay = load_scenario(path)
    assert [s.action for s in replay.timeline] == ["burst", "publish", "scale", "rate", "pause"]
    report = await run_scenario(replay, settings.with_(data_dir=tmp_path / "replay"), speed=2)
    assert report is not None
    assert report.published == sum(recorder.published.values()) >= 50
    assert report.returned == recorder.returned
    assert {q: f.routed for q, f in report.queues.items()} == {
        q.name: recorder.routed[q.name] for q in routing.queues
    }
    assert report.passed, [v for v in report.verdicts if not v.passed]
