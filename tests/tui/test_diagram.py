"""The diagram in the tokens' terms: stations on the layout, paths through inferred hops."""

from __future__ import annotations

from textual.widgets import TabbedContent

from broker_sim.domain.events import Confirmed, Delivered, Published, Routed, TracingChanged
from broker_sim.domain.scenario import Scenario
from broker_sim.domain.scenario_file import load_scenarios
from broker_sim.layout.graph import Edge, FlowGraph, Node
from broker_sim.layout.place import place
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.tui.canvas import FlowCanvas
from broker_sim.tui.diagram import Diagram, lay_out
from broker_sim.tui.view_state import ScenarioView
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


def test_hops_through_exchange_bindings_and_alternates_are_drawn_as_inferred() -> None:
    # The firehose names e1 and the final queue only (checked on 3.10.8): e1 → e2 is drawn dashed,
    # as inferred from the bindings, and a token routed from e1 to q travels through e2.
    nodes = (
        Node("p:app", "producer", "app", "▶ app"),
        Node("x:e1", "exchange", "e1", "⇄ e1"),
        Node("x:e2", "exchange", "e2", "⇄ e2"),
        Node("x:ae", "exchange", "ae", "⇄ ae"),
        Node("q:q", "queue", "q", "▤ q"),
        Node("q:lost", "queue", "lost", "▤ lost"),
    )
    edges = (
        Edge("p:app", "x:e1", "publish"),
        Edge("x:e1", "x:e2", "e2e"),
        Edge("x:e1", "x:ae", "alternate"),
        Edge("x:e2", "q:q", "binding"),
        Edge("x:ae", "q:lost", "binding"),
    )
    diagram = Diagram(place(FlowGraph(nodes, edges), 80), {})
    path = diagram.path(("x", "e1"), ("q", "q"))
    e2 = diagram.box(("x", "e2"))
    assert path is not None and e2 is not None and e2.left in path, "the token crosses e2"
    canvas = FlowCanvas(ScenarioView(Scenario(name="chain", title="Chain")))
    canvas.view.tracing = TracingChanged(True, "traced")
    canvas._build(diagram)
    for (a, b), cells in diagram.picture.routes.items():
        drawn = {canvas._chars[y][x] for x, y in cells[1:-1]}
        if diagram.picture.kinds[(a, b)].inferred:
            # its straight runs are dashed (corners and junctions have no dashed glyph)
            assert drawn & {"╌", "╎"} and not drawn & {"─", "│"}, f"{a} → {b} is inferred: {drawn}"
        else:
            assert not drawn & {"╌", "╎"}, f"{a} → {b} is traced: solid"


async def test_headers_rules_read_in_full_at_100x30_and_a_resize_lays_out_again() -> None:
    app = recorded_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(TabbedContent).active = "pane-headers"
        await pilot.pause()
        tab = next(t for t in app.tabs if t.scenario.name == "headers")
        canvas = tab.canvas
        words = " ".join(canvas.render_line(y).text for y in range(canvas.size.height)).split()
        for rule in ("all:", "format=pdf,", "type=report", "any:", "priority=high,", "urgent=True"):
            assert rule in words, f"{rule} is not on screen in full"
        assert canvas.size.width <= 100 and canvas.diagram.width == 100
        await pilot.resize_terminal(160, 44)
        await pilot.pause()
        assert canvas.diagram.width == 160, "resizing lays the picture out again at once"


async def test_the_hand_typed_producer_gets_an_arrow_only_to_the_exchange_it_published_to() -> None:
    # It used to have an arrow to every exchange, merged with the real producer's: it looked as
    # if it published everywhere. The arrow comes from the engine's Published event.
    app = recorded_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one(TabbedContent).active = "pane-overflow"
        await pilot.pause()
        tab = next(t for t in app.tabs if t.scenario.name == "overflow")

        def mine() -> set[str]:
            return {b for a, b in tab.canvas.diagram.picture.routes if a == "p:you"}

        assert mine() == set(), "nothing typed yet: no arrow"
        tab.feed([Published("r1.you.1", "you", "audit", "", {}, False, "hello")])
        await pilot.pause()
        assert mine() == {"x:audit"}
        assert tab.canvas.diagram.path(("p", "you"), ("x", "audit")), "its token has a way to go"
