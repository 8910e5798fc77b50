"""How the TUI holds up: frame intervals and CPU while ~1,000 msg/s flow, and time to first frame.

Three shapes under the same load, side by side in one run: 3 consumers on one queue (the figure
before the general layout), 100 consumers on one queue (a group's grid of cells), and 20 queues
on one direct exchange with a consumer each. Then the layout of a 200-station topology alone.

Not a test: it prints figures (put them in docs/tui.md). Everything runs in one process, as a user
runs it: the app (headless driver, so the terminal's own speed does not count), the engine, its
producer and consumers, all on one event loop, against a real broker.

    uv run python benchmarks/tui_frames.py --url amqp://guest:guest@localhost:5672/broker-sim-bench

A vhost whose name starts with ``broker-sim`` gets tracing turned on, as a user's would; pass
``--no-trace`` to measure with routing inferred.

Side by side with another version of the code, in one run on the same load (the figures are
ratios; a shared machine's load moves the absolute ones twofold)::

    mkdir /tmp/main && git archive main app styles simulations | tar -x -C /tmp/main
    uv run python benchmarks/tui_frames.py --url … --against /tmp/main --rounds 3

runs each shape alternately with this checkout's code and the other one's (``PYTHONPATH``), in
fresh processes, and prints both and their ratio per round.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import time
import uuid

from broker_sim.domain.scenario import (
    BindingSpec,
    ConsumerGroupSpec,
    ExchangeSpec,
    ProducerSpec,
    QueueSpec,
    Scenario,
    WorkSpec,
)
from broker_sim.settings import Settings, load_settings

FIRST_FRAME = """
import time
t0 = time.perf_counter()
from broker_sim.settings import Settings
from broker_sim.tui.app import make_app
app = make_app(Settings(url={url!r}, url_source="benchmark"))
def painted():
    print(f"{{time.perf_counter() - t0:.3f}}", flush=True)
    app.exit()
app.call_after_refresh(painted)
app.run(headless=True, size=(160, 44))
"""


def load_scenario(rate: float, shape: str) -> Scenario:
    """One direct exchange; the flow is the load. ``shape``: 3-consumers, 100-consumers, 20-queues."""
    queues = 20 if shape == "20-queues" else 1
    consumers = {"3-consumers": 3, "100-consumers": 100}.get(shape, 1)
    names = [f"bench-q{i:02d}" for i in range(queues)]
    return Scenario(
        name="bench",
        title="Benchmark",
        description=f"{rate:g} msg/s, {shape}",
        exchanges=(ExchangeSpec("bench-x", "direct"),),
        queues=tuple(QueueSpec(q) for q in names),
        bindings=tuple(BindingSpec("bench-x", q, q) for q in names),
        producers=(ProducerSpec("load", "bench-x", rate=rate, routing_keys=tuple(names)),),
        consumers=tuple(
            ConsumerGroupSpec(f"sink{i:02d}", q, count=consumers, prefetch=100, work=WorkSpec("delay", 0.0))
            for i, q in enumerate(names)
        ),
    )


def layout_of_200() -> tuple[float, float]:
    """Milliseconds to lay out 200 stations: the first time (igraph's import included), then median."""
    from broker_sim.layout.graph import Edge, FlowGraph, Node
    from broker_sim.layout.place import place

    nodes = [Node(f"p:p{i}", "producer", f"p{i}", f"▶ producer-{i}") for i in range(20)]
    nodes += [Node(f"x:x{i}", "exchange", f"x{i}", f"⇄ exchange-{i}") for i in range(10)]
    nodes += [Node(f"q:q{i}", "queue", f"q{i}", f"▤ queue-{i}", notes=(f"⇠ key.{i}.#",)) for i in range(70)]
    nodes += [Node(f"g:g{i}", "group", f"g{i}", f"⚙ group-{i}", cells=("a", "b", "c")) for i in range(100)]
    edges = [Edge(f"p:p{i}", f"x:x{i % 4}", "publish") for i in range(20)]
    edges += [Edge(f"x:x{i}", f"x:x{i + 3}", "e2e") for i in range(7)]
    edges += [Edge(f"x:x{i % 10}", f"q:q{i}", "binding") for i in range(70)]
    edges += [Edge(f"q:q{i}", f"x:x{i % 3}", "dead-letter") for i in range(0, 70, 7)]
    edges += [Edge(f"q:q{i % 70}", f"g:g{i}", "consume") for i in range(100)]
    graph = FlowGraph(tuple(nodes), tuple(edges))
    t0 = time.perf_counter()
    place(graph, 160)
    first = time.perf_counter() - t0
    runs = []
    for _ in range(20):
        t0 = time.perf_counter()
        place(graph, 160)
        runs.append(time.perf_counter() - t0)
    return first * 1000, statistics.median(runs) * 1000


def first_frame(url: str, runs: int) -> list[float]:
    """Seconds from interpreter start of the app's code to its first painted frame (fresh process)."""
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", FIRST_FRAME.format(url=url)], capture_output=True, text=True, check=True
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return times


def _count_canvas_frames(canvas: object) -> list[float]:
    """Times of the screen updates that carried a change of the canvas.

    A frame that only moves tokens repaints just the rows they are on (with 20 queues most rows
    hold none), so "row 0 was painted" would count only full repaints: a frame is a compositor
    update during which the canvas drew any row."""
    from textual.screen import Screen

    paints: list[float] = []
    drew = [False]
    draw = canvas.render_line  # type: ignore[attr-defined]

    def marked_render_line(y: int):  # type: ignore[no-untyped-def]
        drew[0] = True
        return draw(y)

    refresh = Screen._compositor_refresh

    def timed_refresh(screen: Screen[object]) -> None:
        refresh(screen)
        if drew[0]:
            drew[0] = False
            paints.append(time.perf_counter())

    canvas.render_line = marked_render_line  # type: ignore[attr-defined]
    Screen._compositor_refresh = timed_refresh  # type: ignore[method-assign,assignment]
    return paints


async def under_load(
    settings: Settings, rate: float, seconds: float, animation: bool, shape: str
) -> dict[str, float]:
    """Run the app with the load scenario; measure paints of the flow canvas, CPU and throughput."""
    from broker_sim.tui.app import make_app

    app = make_app(settings.with_(animation=animation), scenarios=[load_scenario(rate, shape)])
    tab = app.tabs[0]
    paints = _count_canvas_frames(tab.canvas)
    result: dict[str, float] = {}
    async with app.run_test(size=(160, 44)) as pilot:
        while tab.view.tally.acked < rate:  # warm up: connected and a second's worth through
            await pilot.pause(0.1)
        paints.clear()
        acked0, cpu0, wall0 = tab.view.tally.acked, time.process_time(), time.perf_counter()
        await pilot.pause(seconds)
        wall = time.perf_counter() - wall0
        result["cpu_cores"] = (time.process_time() - cpu0) / wall
        result["msg_per_s"] = (tab.view.tally.acked - acked0) / wall
        intervals = [b - a for a, b in itertools.pairwise(paints)] or [wall]
        result["fps"] = len(paints) / wall
        result["frame_median_ms"] = statistics.median(intervals) * 1000
        result["frame_p99_ms"] = sorted(intervals)[int(0.99 * (len(intervals) - 1))] * 1000
        result["tokens"] = len(tab.view.tokens.tokens)
        await app.stop_engines()
    return result


async def engine_alone(settings: Settings, rate: float, seconds: float, shape: str) -> float:
    """The same scenario without any UI: msg/s acked, for the ratio."""
    from broker_sim.domain.tally import Tally
    from broker_sim.sim import Engine

    engine = Engine(load_scenario(rate, shape), settings)
    tally = Tally()
    engine.bus.subscribe(tally)
    await engine.start()
    await engine.ready()
    while tally.acked < rate:  # warm up (a benchmark may poll; tests may not)  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    acked0, wall0 = tally.acked, time.perf_counter()
    await asyncio.sleep(seconds)
    rate_seen = (tally.acked - acked0) / (time.perf_counter() - wall0)
    await engine.stop()
    return rate_seen


def one_run(url: str, rate: float, seconds: float, shape: str, code: str | None) -> dict[str, float]:
    """:func:`under_load` in a fresh process, on this checkout's code or on ``code`` (its app/'s parent)."""
    import json

    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = f"{code}/app"
    script = (
        "import asyncio, json, sys, uuid; sys.path.insert(0, 'benchmarks'); import tui_frames as t; "
        f"s = t.load_settings({url!r}); s = s.with_(name_prefix=f'bench{{uuid.uuid4().hex[:6]}}.'); "
        f"print(json.dumps(asyncio.run(t.under_load(s, {rate!r}, {seconds!r}, True, {shape!r}))))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def side_by_side(url: str, rate: float, seconds: float, shapes: list[str], other: str, rounds: int) -> None:
    """Each shape, this code and the other alternately, ``rounds`` times: figures and ratios."""
    for shape in shapes:
        for n in range(rounds):
            mine = one_run(url, rate, seconds, shape, None)
            theirs = one_run(url, rate, seconds, shape, other)
            load = os.getloadavg()[0]
            print(
                f"[{shape}] round {n + 1} (load {load:.1f}): this {_figures(mine)} | other {_figures(theirs)}"
                f" | ratio fps {mine['fps'] / theirs['fps']:.2f},"
                f" p99 {mine['frame_p99_ms'] / theirs['frame_p99_ms']:.2f},"
                f" msg/s {mine['msg_per_s'] / max(1.0, theirs['msg_per_s']):.2f}",
                flush=True,
            )


def _figures(r: dict[str, float]) -> str:
    return (
        f"{r['fps']:.1f} fps, p99 {r['frame_p99_ms']:.0f} ms, {r['cpu_cores']:.2f} cores, "
        f"{r['msg_per_s']:.0f} msg/s"
    )


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--shapes", nargs="+", default=["3-consumers", "100-consumers", "20-queues"])
    parser.add_argument("--animation-off", action="store_true", help="also run each shape with animation off")
    parser.add_argument(
        "--against", default=None, help="another checkout (its app/ dir's parent): side by side"
    )
    parser.add_argument("--rounds", type=int, default=2, help="with --against: alternations per shape")
    args = parser.parse_args()
    if args.against:
        side_by_side(args.url, args.rate, args.seconds, args.shapes, args.against, args.rounds)
        return
    settings = load_settings(args.url, trace=False if args.no_trace else None)
    settings = settings.with_(name_prefix=f"bench{uuid.uuid4().hex[:6]}.")
    print(f"broker {settings.masked_url}, {args.rate:g} msg/s offered, {args.seconds:g} s per run")
    first, median = layout_of_200()
    print(
        f"layout of 200 stations: {median:.1f} ms median of 20 "
        f"({first:.0f} ms the first time, igraph's import included)"
    )
    ff = first_frame(settings.url, 5)
    runs = ", ".join(f"{t:.2f}" for t in ff)
    print(f"first frame: median {statistics.median(ff) * 1000:.0f} ms (runs: {runs} s)")
    base: dict[str, float] = {}
    for shape in args.shapes:
        alone = asyncio.run(engine_alone(settings, args.rate, args.seconds, shape))
        print(f"[{shape}] engine alone, no UI: {alone:.0f} msg/s acked")
        for animation in (True, False) if args.animation_off else (True,):
            r = asyncio.run(under_load(settings, args.rate, args.seconds, animation, shape))
            if animation and not base:
                base = r
            print(
                f"[{shape}] TUI animation {'on ' if animation else 'off'}: {r['msg_per_s']:.0f} msg/s acked "
                f"({r['msg_per_s'] / alone:.2f} of engine alone), canvas {r['fps']:.1f} fps "
                f"({r['fps'] / base['fps']:.2f} of {args.shapes[0]}), frame interval median "
                f"{r['frame_median_ms']:.1f} ms, p99 {r['frame_p99_ms']:.1f} ms, "
                f"CPU {r['cpu_cores']:.2f} cores "
                f"({r['cpu_cores'] / base['cpu_cores']:.2f} of {args.shapes[0]}), {r['tokens']:.0f} tokens"
            )


if __name__ == "__main__":
    main()
