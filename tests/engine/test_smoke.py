"""The engine runs each built-in scenario on the real broker and reports traced routing."""

from __future__ import annotations

import pytest

from broker_sim.domain.events import Routed, TracingChanged
from broker_sim.domain.scenario_file import load_scenarios
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.settings import Settings
from tests.support import running

SCENARIOS = {s.name: s for s in load_scenarios(builtin_scenarios_dir())}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_builtin_scenario_flows(name: str, settings: Settings) -> None:
    async with running(SCENARIOS[name], settings) as (engine, w):
        await w.until(lambda: w.tally.acked >= 3, "three messages processed")
        assert engine.traced
        assert w.of(TracingChanged)[-1].traced
        routed = {e.message_id: e for e in w.of(Routed)}
        assert all(r.source == "trace" for r in routed.values())
