"""The diagram's layout: every station and edge fits the terminal, from 80 columns up."""

from __future__ import annotations

import pytest
from textual.widgets import TabbedContent

from broker_sim.domain.events import Confirmed, Delivered, Routed
from broker_sim.domain.scenario import Scenario
from broker_sim.domain.scenario_file import load_scenarios
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.tui.diagram import BOX_ROWS, MIN_WIDTH, lay_out
from tests.tui.recorded import Story
from tests.tui.test_snapshots import recorded_app

SCENARIOS = load_scenarios(builtin_scenarios_dir())


def rosters(scenario_name: str, per_group: int) -> dict[str, list[str]]:
    scenario = next(s for s in SCENARIOS if s.name == scenario_name)
    return {g.name: [f"{g.name}-{i}" for i in range(1, per_group + 1)] for g in scenario.consumers}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
@pytest.mark.parametrize("width", [MIN_WIDTH, 90, 100, 109, 110, 160, 240])
@pytest.mark.parametrize("per_group", [1, 3, 9])
def test_every_box_and_edge_fits_and_nothing_overlaps(scenario: Scenario, width: int, per_group: int) -> None:
    diagram = lay_out(scenario, rosters(scenario.name, per_group), {}, width)
    assert diagram.width == width
    boxes = list(diagram.boxes.values())
    taken: dict[tuple[int, int], object] = {}
    for box in boxes:
        assert box.x >= 1 and box.x + box.width <= width, f"{box.station} sticks out at width {width}"
        assert box.y + BOX_ROWS <= diagram.height
        for y in range(box.y, box.y + BOX_ROWS):
            for x in range(box.x, box.x + box.width):
                assert (x, y) not in taken, f"{box.station} overlaps {taken[(x, y)]} at width {width}"
                taken[(x, y)] = box.station
    for (start, end), cells in diagram.edges.items():
        assert cells, f"no path from {start} to {end}"
        inside = [c for c in cells if c in taken]
        assert not inside, f"the edge {start} → {end} runs through a box at {inside[0]}"
        assert all(0 <= x < width and 0 <= y < diagram.height for x, y in cells)
    drawn = {station for pair in diagram.edges for station in pair}
    assert drawn == set(diagram.boxes), "every station is joined to the picture"


async def test_tokens_waiting_at_a_consumer_stop_short_of_the_queue_box() -> None:
    # Seen at 120 columns: a worker holding many messages drew its tokens over "ready 0 · una…".
    app = recorded_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one(TabbedContent).active = "pane-work-queue"
        await pilot.pause()
        tab = next(t for t in app.tabs if t.scenario.name == "work-queue")
        story = Story("").up("worker-1", "worker", "image-jobs", prefetch=0)
        for seq in range(1, 21):
            mid = story.publish("main-server", seq, "image-jobs")
            story.add(Confirmed(mid, "main-server"), Routed(mid, "", "image-jobs", ("image-jobs",), "trace"))
            story.add(Delivered(mid, "image-jobs", "worker-1", seq % 2 == 0, "image-jobs", ""))
        events = story.events
        for start in range(0, len(events), 4):  # a message at a time, as they come
            tab.feed(events[start : start + 4])
            tab.view.tokens.step(10)
        tab.view.tokens.step(100)
        tab.feed([])
        await pilot.pause()
        canvas = tab.canvas
        diagram = canvas._layout(canvas.size.width)
        queue, worker = diagram.boxes[("q", "image-jobs")], diagram.boxes[("c", "worker-1")]
        rows = [canvas.render_line(y).text for y in range(diagram.height)]
        waiting = rows[worker.y + 1][queue.x + queue.width : worker.x]
        assert "●" in waiting or "◆" in waiting, "the worker's messages in hand are drawn"
        for y in (queue.y, queue.y + 1):
            words = rows[y][queue.x : queue.x + queue.width]
            assert not set(words) & set("●◆○"), f"a token over the queue's words: {words!r}"
