"""The diagram in the tokens' terms: stations on the layout, paths through inferred hops."""

from __future__ import annotations

from textual.widgets import TabbedContent

from broker_sim.domain.events import Confirmed, Delivered, Routed
from broker_sim.domain.scenario_file import load_scenarios
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.tui.diagram import lay_out
from tests.tui.recorded import Story
from tests.tui.test_snapshots import recorded_app

SCENARIOS = load_scenarios(builtin_scenarios_dir())


def test_a_token_crosses_exchange_bindings_it_was_not_told_about() -> None:
    # The trace names the first exchange and the final queues only: the way between them is
    # found along the arrows (here through the default exchange's implicit binding).
    scenario = next(s for s in SCENARIOS if s.name == "work-queue")
    diagram = lay_out(scenario, {"worker": ["worker-1", "worker-2"]}, {}, 80)
    direct = diagram.path(("p", "main-server"), ("x", ""))
    through = diagram.path(("p", "main-server"), ("q", "image-jobs"))
    assert direct and through and through[: len(direct)] == direct and len(through) > len(direct)
    assert diagram.hops("p:main-server", "g:worker") == ["p:main-server", "x:", "q:image-jobs", "g:worker"]
    # a consumer is its cell in the group's grid
    spot = diagram.spot(("c", "worker-2"))
    group = diagram.box(("c", "worker-2"))
    assert spot is not None and group is not None and group.holds(spot)


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
        diagram = canvas.diagram
        queue, worker = diagram.box(("q", "image-jobs")), diagram.box(("c", "worker-1"))
        assert queue is not None and worker is not None
        rows = [canvas.render_line(y).text for y in range(diagram.height)]
        waiting = rows[worker.y + 1][queue.x + queue.width : worker.x]
        assert "●" in waiting or "◆" in waiting, "the worker's messages in hand are drawn"
        for y in (queue.y, queue.y + 1):
            words = rows[y][queue.x : queue.x + queue.width]
            assert not set(words) & set("●◆○"), f"a token over the queue's words: {words!r}"
