"""The layout for any topology: pure geometry, tested without Textual.

Over every built-in scenario and over generated topologies (random exchange chains, alternate
exchanges, dead-letter loops; 1-6 exchanges, 1-30 queues, 1-100 consumers): boxes never overlap,
arrows never run through a box, every name and every note is shown in full, nothing is hidden
without a "+N more".
"""

from __future__ import annotations

import itertools
import random

import pytest

from broker_sim.domain.scenario import Scenario
from broker_sim.domain.scenario_file import load_scenarios
from broker_sim.layout.columns import column_of, columns
from broker_sim.layout.from_scenario import scenario_graph
from broker_sim.layout.graph import Edge, FlowGraph, Node
from broker_sim.layout.place import PAD, Picture, place
from broker_sim.resources import builtin_scenarios_dir

SCENARIOS = load_scenarios(builtin_scenarios_dir())
WIDTHS = [80, 120, 200]


def generated(seed: int) -> FlowGraph:
    """A random topology with every kind of edge, including loops back."""
    rng = random.Random(seed)
    n_x, n_q = rng.randint(1, 6), rng.randint(1, 30)
    nodes: list[Node] = []
    edges: list[Edge] = []
    xs = [f"x:ex-{i}" for i in range(n_x)]
    for i in range(rng.randint(1, 4)):
        nodes.append(Node(f"p:producer-{i}", "producer", f"producer-{i}", f"▶ producer-{i}", detail_width=12))
        edges.append(Edge(f"p:producer-{i}", rng.choice(xs), "publish"))
    for i, x in enumerate(xs):
        name = f"exchange-{'long' * rng.randint(0, 3)}-{i}"
        nodes.append(Node(x, "exchange", name, f"⇄ {name}", detail_width=16))
        if i and rng.random() < 0.6:  # fed by an earlier exchange: a binding or as its alternate
            edges.append(Edge(xs[rng.randrange(i)], x, rng.choice(["e2e", "alternate"])))
    for i in range(n_q):
        q = f"q:queue-{i}"
        notes = tuple(f"⇠ key-{j}.{'#' * rng.randint(0, 2)}" for j in range(rng.randint(0, 3)))
        nodes.append(Node(q, "queue", f"queue-{i}", f"▤ queue-{i}", notes=notes, detail_width=26))
        edges.append(Edge(rng.choice(xs), q, "binding"))
        if rng.random() < 0.2:
            edges.append(Edge(q, rng.choice(xs), "dead-letter"))  # a loop back
        if rng.random() < 0.8:
            size = rng.choice([1, 2, 3, 12, 40, 100])
            cells = tuple(f"group-{i}-{k}" for k in range(1, size + 1)) if size > 1 else ()
            nodes.append(Node(f"g:group-{i}", "group", f"group-{i}", f"⚙ group-{i}", cells=cells))
            edges.append(Edge(q, f"g:group-{i}", "consume"))
    return FlowGraph(tuple(nodes), tuple(edges))


def built_in(scenario: Scenario, per_group: int) -> FlowGraph:
    return scenario_graph(
        scenario, {g.name: [f"{g.name}-{i}" for i in range(1, per_group + 1)] for g in scenario.consumers}
    )


def check(graph: FlowGraph, picture: Picture, width: int) -> None:
    """No overlaps, no arrow through a box, every name and note in full, nothing hidden silently."""
    taken: dict[tuple[int, int], str] = {}
    for node in graph.nodes:
        box = picture.boxes[node.id]
        assert box.x >= 1 and box.x + box.width <= picture.width, f"{node.id} sticks out"
        assert box.y + box.height <= picture.height
        for y in range(box.y, box.y + box.height):
            for x in range(box.x, box.x + box.width):
                assert (x, y) not in taken, f"{node.id} overlaps {taken[(x, y)]} at {width} columns"
                taken[(x, y)] = node.id
        inner = box.width - PAD
        assert " ".join(box.title) == node.title and all(len(t) <= inner for t in box.title), node.title
        assert " ".join(box.notes).split() == " ".join(node.notes).split(), f"a note of {node.id} lost words"
        assert all(len(line) <= inner for line in box.notes), f"a note of {node.id} is wider than its box"
        assert len(box.cells) + box.hidden == len(node.cells), f"{node.id} hides consumers silently"
        for _, (cx, cy) in box.cells:
            assert box.holds((cx, cy)) and cy < box.more_y + (0 if box.hidden else 1)
    for edge in graph.edges:
        cells = picture.routes[(edge.source, edge.target)]
        a, b = picture.boxes[edge.source], picture.boxes[edge.target]
        assert cells[0] == a.right and cells[-1] == b.left
        inside = [c for c in cells if c in taken]
        assert not inside, f"the arrow {edge.source} → {edge.target} runs through {taken[inside[0]]}"
        assert all(abs(p[0] - q[0]) + abs(p[1] - q[1]) == 1 for p, q in itertools.pairwise(cells))


class Scrolls(AssertionError):
    """The picture is wider than the screen: the tab scrolls sideways."""


def test_every_built_in_scenario_is_laid_out() -> None:
    assert {s.name for s in SCENARIOS} >= {"retry", "overflow", "priority", "rpc"}
    assert len(SCENARIOS) == len(list(builtin_scenarios_dir().glob("*.toml")))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("per_group", [1, 3, 23, 100])
def test_built_in_topologies_fit_with_every_name_in_full(
    scenario: Scenario, width: int, per_group: int
) -> None:
    graph = built_in(scenario, per_group)
    picture = place(graph, width)
    check(graph, picture, width)
    if picture.width != width:
        raise Scrolls(
            f"{scenario.name} is {picture.width} cells wide: the built-in tabs need no sideways scrolling"
        )


def kinds_of(scenario_name: str) -> set[tuple[str, str, str]]:
    scenario = next(s for s in SCENARIOS if s.name == scenario_name)
    return {(e.source, e.target, e.kind) for e in scenario_graph(scenario).edges}


def test_the_retry_loop_is_drawn_back_to_the_work_exchange() -> None:
    edges = kinds_of("retry")
    assert ("q:work", "x:retry", "dead-letter") in edges
    assert ("q:wait", "x:jobs", "dead-letter") in edges
    assert ("g:worker", "x:parking", "publish") in edges, "the worker parks a job on its last try"
    scenario = next(s for s in SCENARIOS if s.name == "retry")
    graph = built_in(scenario, 2)
    picture = place(graph, 80)
    col = column_of(graph)
    assert col["q:wait"] > col["x:jobs"], "the wait queue feeds the jobs exchange again: a loop back"
    bottom = max(b.y + b.height for b in picture.boxes.values())
    assert max(y for _, y in picture.routes[("q:wait", "x:jobs")]) >= bottom, "the loop runs below the boxes"
    # loops nest: the one into the topmost exchange runs outermost (lowest lane, leftmost way up)
    lane = {e: max(y for _, y in picture.routes[e]) for e in [("q:wait", "x:jobs"), ("q:work", "x:retry")]}
    up = {e: min(x for x, y in picture.routes[e] if y == lane[e]) for e in lane}
    assert lane[("q:wait", "x:jobs")] > lane[("q:work", "x:retry")]
    assert up[("q:wait", "x:jobs")] < up[("q:work", "x:retry")]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_hand_typed_messages_fit_at_80_columns_even_sent_to_every_exchange(scenario: Scenario) -> None:
    graph = scenario_graph(scenario, None, [x.name for x in scenario.exchanges] + [""])
    picture = place(graph, 80)
    check(graph, picture, 80)
    assert picture.width == 80, f"{scenario.name} is {picture.width} cells wide with ✎ you's arrows"


def test_the_hand_typed_producer_points_only_at_the_exchanges_it_published_to() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "overflow")
    assert not [e for e in scenario_graph(scenario).edges if e.source == "p:you"], "nothing typed yet"
    typed = [
        (e.target, e.kind) for e in scenario_graph(scenario, None, ["audit"]).edges if e.source == "p:you"
    ]
    assert typed == [("x:audit", "publish")]


def test_an_rpc_servers_answers_are_drawn_through_the_default_exchange_as_inferred() -> None:
    edges = kinds_of("rpc")
    assert ("g:server", "x:", "reply") in edges
    assert ("x:", "q:replies", "binding") in edges, "the default exchange routes the answer by its name"
    assert not [e for e in edges if e[0] == "g:inbox"], "the client's inbox answers nothing"
    scenario = next(s for s in SCENARIOS if s.name == "rpc")
    graph = built_in(scenario, 3)
    picture = place(graph, 80)
    assert picture.kinds[("g:server", "x:")].inferred, "no event reports a reply's publish"
    bottom = max(b.y + b.height for b in picture.boxes.values())
    assert max(y for _, y in picture.routes[("g:server", "x:")]) >= bottom, "it loops back below the boxes"


def test_a_group_too_narrow_for_its_buttons_beside_its_name_has_them_on_the_row_below() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "overflow")
    graph = built_in(scenario, 3)
    narrow, wide = place(graph, 80).boxes["g:shipper"], place(graph, 200).boxes["g:shipper"]
    assert narrow.controls_y == narrow.detail_y and len(narrow.title[0]) + 5 > narrow.width - PAD
    assert wide.controls_y == wide.y


def test_overflow_draws_its_alternate_exchange_and_exchange_binding() -> None:
    edges = kinds_of("overflow")
    assert ("x:orders", "x:unrouted", "alternate") in edges
    assert ("x:orders", "x:audit", "e2e") in edges
    scenario = next(s for s in SCENARIOS if s.name == "overflow")
    graph = scenario_graph(scenario)
    assert graph.node("x:audit").notes == ("⇠ orders: paid",), "the exchange binding's key is on its box"
    col = column_of(graph)
    assert col["x:unrouted"] == col["x:audit"] == col["x:orders"] + 1
    picture = place(graph, 120)
    assert (
        picture.kinds[("x:orders", "x:unrouted")].inferred and picture.kinds[("x:orders", "x:audit")].inferred
    )


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("width", WIDTHS)
def test_generated_topologies_have_no_overlaps_and_every_name_in_full(seed: int, width: int) -> None:
    graph = generated(seed)
    picture = place(graph, width)
    assert picture.width >= width
    check(graph, picture, width)


def test_exchange_chains_stand_in_columns_and_loops_do_not_push_right() -> None:
    nodes = (
        Node("p:a", "producer", "a", "▶ a"),
        Node("x:work", "exchange", "work", "⇄ work"),
        Node("x:retry", "exchange", "retry", "⇄ retry"),
        Node("x:ae", "exchange", "ae", "⇄ ae"),
        Node("q:jobs", "queue", "jobs", "▤ jobs"),
        Node("q:wait", "queue", "wait", "▤ wait"),
        Node("g:w", "group", "w", "⚙ w"),
    )
    edges = (
        Edge("p:a", "x:work", "publish"),
        Edge("x:work", "x:ae", "alternate"),
        Edge("x:work", "q:jobs", "binding"),
        Edge("q:jobs", "g:w", "consume"),
        Edge("q:jobs", "x:retry", "dead-letter"),
        Edge("x:retry", "q:wait", "binding"),
        Edge("q:wait", "x:work", "dead-letter"),
        Edge("x:ae", "x:work", "e2e"),  # a cycle of exchanges is broken, not followed forever
    )
    graph = FlowGraph(nodes, edges)
    col = column_of(graph)
    assert col["p:a"] == 0 and col["x:work"] == 1 and col["x:ae"] == 2
    assert col["q:jobs"] == col["q:wait"] == 3 and col["g:w"] == 4
    assert [set(c) for c in columns(graph)][1] == {"x:work", "x:retry"}
    picture = place(graph, 80)
    check(graph, picture, 80)
    # the loops run below every box, each on a lane of its own
    bottom = max(b.y + b.height for b in picture.boxes.values())
    lanes = {max(y for _, y in picture.routes[e]) for e in [("q:jobs", "x:retry"), ("q:wait", "x:work")]}
    assert len(lanes) == 2 and min(lanes) >= bottom


def test_a_hundred_consumers_become_a_grid_with_the_rest_counted() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "work-queue")
    graph = built_in(scenario, 100)
    picture = place(graph, 80)
    group = picture.boxes["g:worker"]
    assert group.hidden > 0 and len(group.cells) + group.hidden == 100
    assert len({y for _, (_, y) in group.cells}) <= 4, "at most four rows of cells"


def test_ordering_keeps_crossings_few() -> None:
    # two exchanges each feeding its own queues, declared interleaved: the order untangles them
    nodes = [Node("x:a", "exchange", "a", "⇄ a"), Node("x:b", "exchange", "b", "⇄ b")]
    edges = []
    for i in range(6):
        nodes.append(Node(f"q:{i}", "queue", str(i), f"▤ {i}"))
        edges.append(Edge("x:a" if i % 2 else "x:b", f"q:{i}", "binding"))
    order = columns(FlowGraph(tuple(nodes), tuple(edges)))
    queues = order[-1]
    fed_by_a = [i for i, q in enumerate(queues) if int(q[2:]) % 2]
    assert fed_by_a in ([0, 1, 2], [3, 4, 5]), f"the queues of one exchange stand together: {queues}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_the_first_frames_declaration_order_is_the_order_igraph_gives_the_built_ins(
    scenario: Scenario,
) -> None:
    # The first frame is laid out before igraph is imported: no station may jump once it is.
    graph = built_in(scenario, 3)
    assert columns(graph, ordered=False) == columns(graph)
    assert place(graph, 80, ordered=False).boxes == place(graph, 80).boxes
