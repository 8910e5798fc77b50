"""Which column each station stands in, and its order within the column.

Columns follow the message's way, left to right: producers, then the exchanges (an exchange fed
by another exchange, through a binding or as its alternate, one column further right), then the
queues, then the consumer groups. Edges that go back (a queue dead-lettering into an exchange)
are drawn as loops and do not push anything to the right.

The order within each column is igraph's Sugiyama layout with these columns as fixed layers (its
barycenter sweeps keep crossings few). Compared here with grandalf for 200 stations: igraph
1.9 ms, grandalf 25.7 ms; igraph takes fixed layers as an argument (grandalf ranks by itself and
would need its internals overridden), and its C core is actively maintained. Its import costs
~0.1 s: the app warms it up in a thread after the first frame, which is laid out in declaration
order (``ordered=False``; for the built-in scenarios the same order igraph gives, which a
test keeps so). igraph is
pinned below 1.0: 1.0.0's ``layout_sugiyama`` crashed the process (SIGSEGV) on random layered
graphs here within a few hundred calls, where 0.11.9 ran 3,000 of them cleanly.
"""

from __future__ import annotations

import threading

from broker_sim.layout.graph import FlowGraph, NodeKind

EXCHANGE_CHAIN = ("e2e", "alternate")
_LOADED = threading.Event()


def warm_up() -> None:
    """Import igraph (~0.1 s; call it in a thread): afterwards :func:`ordering_ready` is True."""
    import igraph  # noqa: F401

    _LOADED.set()


def ordering_ready() -> bool:
    """True once igraph is imported: ordering then costs milliseconds, not an import."""
    return _LOADED.is_set()


def column_of(graph: FlowGraph) -> dict[str, int]:
    """Each station's column: producers 0, exchanges 1 + their depth in chains, then queues, groups."""
    depth = _exchange_depths(graph)
    deepest = max(depth.values(), default=0)
    base: dict[NodeKind, int] = {"producer": 0, "queue": deepest + 2, "group": deepest + 3}
    return {n.id: 1 + depth.get(n.id, 0) if n.kind == "exchange" else base[n.kind] for n in graph.nodes}


def _exchange_depths(graph: FlowGraph) -> dict[str, int]:
    """Longest chain of exchange → exchange hops ending at each exchange.

    A cycle (``a → b → a``) is broken at the edge that leads back to an exchange met earlier on
    the way from the producers, so the exchange producers publish to stays leftmost.
    """
    exchanges = [n.id for n in graph.nodes if n.kind == "exchange"]
    published = {e.target for e in graph.edges if e.kind == "publish"}
    chain = [(e.source, e.target) for e in graph.edges if e.kind in EXCHANGE_CHAIN]
    onward: dict[str, list[str]] = {}
    for source, target in chain:
        onward.setdefault(source, []).append(target)
    back: set[tuple[str, str]] = set()
    seen: set[str] = set()

    def walk(node: str, stack: set[str]) -> None:
        seen.add(node)
        for nxt in onward.get(node, []):
            if nxt in stack:
                back.add((node, nxt))
            elif nxt not in seen:
                walk(nxt, stack | {nxt})

    for root in sorted(exchanges, key=lambda x: x not in published):  # published-to first
        if root not in seen:
            walk(root, {root})
    feeds: dict[str, list[str]] = {}
    for source, target in chain:
        if (source, target) not in back:
            feeds.setdefault(target, []).append(source)
    depth: dict[str, int] = {}

    def longest(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((longest(s) for s in feeds.get(node, [])), default=-1)
        return depth[node]

    for node in exchanges:
        longest(node)
    return depth


def columns(graph: FlowGraph, *, ordered: bool = True) -> list[list[str]]:
    """Station ids per column, left to right, each column ordered top to bottom for few crossings
    (``ordered=False``: in declaration order, groups in their queues' order, without igraph)."""
    column = column_of(graph)
    count = max(column.values(), default=-1) + 1
    ids = [n.id for n in graph.nodes]
    index = {node_id: i for i, node_id in enumerate(ids)}
    # igraph wants edges from a lower layer to a higher one: turn back edges round, drop the rest
    pairs = []
    for edge in graph.edges:
        a, b = index[edge.source], index[edge.target]
        if column[edge.source] < column[edge.target]:
            pairs.append((a, b))
        elif column[edge.source] > column[edge.target]:
            pairs.append((b, a))
    pairs = list(dict.fromkeys(pairs))  # a binding and a loop back between the same two: one edge
    if pairs and ordered:
        x = _sugiyama_x(len(ids), pairs, [column[i] for i in ids])
        result: list[list[str]] = [[] for _ in range(count)]
        for node_id in sorted(ids, key=lambda i: (x[index[i]], index[i])):
            result[column[node_id]].append(node_id)
        return result
    return _declared(ids, column, count, pairs)


def _declared(
    ids: list[str], column: dict[str, int], count: int, pairs: list[tuple[int, int]]
) -> list[list[str]]:
    """Without igraph: declaration order, except that consumer groups stand in their queues' order."""
    result: list[list[str]] = [[] for _ in range(count)]
    for node_id in ids:
        result[column[node_id]].append(node_id)
    if count > 1:
        queues = {q: i for i, q in enumerate(result[-2])}
        fed = {ids[b]: queues[ids[a]] for a, b in pairs if ids[a] in queues}
        result[-1].sort(key=lambda g: fed.get(g, len(queues)))
    return result


def _sugiyama_x(n: int, pairs: list[tuple[int, int]], layers: list[int]) -> list[float]:
    import igraph  # ~0.1 s to import: warmed up in a thread after the first frame

    _LOADED.set()
    graph = igraph.Graph(n=n, edges=pairs, directed=True)
    layout = graph.layout_sugiyama(layers=layers)
    return [float(layout[i][0]) for i in range(n)]
