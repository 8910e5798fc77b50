"""The tab's plain controller, without Textual: the figures' words, the trouble panel, the order
keys walk — folded from a recorded event stream (test data for the view, no broker involved)."""

from __future__ import annotations

from broker_sim.domain.events import ConnectionChanged, LinkState
from broker_sim.domain.scenario_file import load_scenarios
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.settings import Settings
from broker_sim.tui.tab_controller import TabController, next_station
from tests.tui.recorded import work_queue

URL = "amqp://guest:guest@localhost:5672/"


def controller() -> TabController:
    scenario = next(s for s in load_scenarios(builtin_scenarios_dir()) if s.name == "work-queue")
    return TabController(scenario, Settings(url=URL, url_source="test"))


def test_figures_say_what_the_events_did() -> None:
    run = controller()
    run.fold(work_queue().events, now=0.0)
    figures = run.figures("worker", narrow=False)
    assert figures.publishing.plain.startswith("published 8  confirmed 7")
    assert "redelivered 1" in figures.consuming.plain
    assert figures.routed.plain.startswith("routed  image-jobs 7")
    assert "▸worker: 2 consumers" in figures.groups.plain
    assert figures.producers.plain.endswith("acked/s (last 60 s) →")
    assert not run.figures("worker", narrow=True).producers.plain.endswith("→")


def test_equal_words_compare_equal_so_a_bound_line_is_left_alone() -> None:
    run = controller()
    run.fold(work_queue().events, now=0.0)
    assert run.figures(None, narrow=False) == run.figures(None, narrow=False)
    assert run.figures(None, narrow=False) != run.figures("worker", narrow=False)


def test_trouble_is_shown_only_while_the_link_is_in_trouble() -> None:
    run = controller()
    assert run.trouble() is None
    run.fold([ConnectionChanged(LinkState.UNREACHABLE, URL, "connection refused")], now=0.0)
    words = run.trouble()
    assert words is not None and words.plain.startswith("No broker answers")
    run.fold([ConnectionChanged(LinkState.CONNECTED, URL, "")], now=1.0)
    assert run.trouble() is None
    run.broker_problem = "port 5672 taken"
    words = run.trouble()
    assert words is not None and "port 5672 taken" in words.plain


def test_keys_walk_the_stations_round_and_the_groups_in_order() -> None:
    order = ["p:a", "x:b", "q:c"]
    assert next_station(order, None, 1) == "p:a"
    assert next_station(order, None, -1) == "q:c"
    assert next_station(order, "q:c", 1) == "p:a"
    assert next_station([], None, 1) is None
    run = controller()
    first = run.scenario.consumers[0].name
    assert run.next_group(None) == first


def test_rates_scale_within_bounds() -> None:
    run = controller()
    run.fold(work_queue().events, now=0.0)
    for name in run.view.rates:
        run.view.rates[name] = 1500.0
    assert set(run.scaled_rates(2.0).values()) == {2000.0}
