"""The log says why a message came back in the words of its exchange's type."""

from __future__ import annotations

import pytest

from broker_sim.domain.events import Delivered
from broker_sim.domain.scenario_file import load_scenarios
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.tui.view_state import ScenarioView
from tests.tui.recorded import STORIES


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("routing", "direct-logs ↩ returned: no queue matched 'debug' (NO_ROUTE)"),
        ("headers", "documents ↩ returned: no binding matched its headers (NO_ROUTE)"),
    ],
)
def test_a_return_is_explained_by_what_the_exchange_matches_on(name: str, words: str) -> None:
    scenario = next(s for s in load_scenarios(builtin_scenarios_dir()) if s.name == name)
    view = ScenarioView(scenario)
    view.apply(STORIES[name]().events)
    returns = [line.text for line in view.log if line.kind == "returned"]
    assert len(returns) == 1 and returns[0].endswith(words)


def test_the_log_says_each_messages_priority_and_the_tally_counts_the_overtaking() -> None:
    scenario = next(s for s in load_scenarios(builtin_scenarios_dir()) if s.name == "priority")
    view = ScenarioView(scenario)
    view.apply(STORIES["priority"]().events)
    published = [line.text for line in view.log if line.kind == "publish"]
    assert any(t.endswith("urgent → (default)  tasks  priority 9") for t in published), published
    # urgent#1, published after bulk 2 and 3, went first: it overtook once one of them comes out
    assert view.tally.order.overtook["tasks"] == 0
    view.apply([Delivered("r1.bulk.2", "tasks", "worker-1", False, "tasks", "")])
    assert view.tally.order.overtook["tasks"] == 1
