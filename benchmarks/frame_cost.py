"""What one frame of the flow picture costs, in CPU time, side by side with another version.

``tui_frames.py`` measures the whole app under a real broker's load; on a shared 2-core machine
whose load average is 6-10, its process gets a fifth of a core and its figures say more about
the neighbours than about the code. This benchmark takes the broker and the engine out: the
app (headless, no engine) is fed a synthetic stream of flow events as the bridge would deliver
them at 1,000 msg/s (33 messages' events per frame), and runs what the 30 fps ticker and the
8 Hz figures timer run, then lets Textual paint. The figure is the process's CPU time per frame
(robust to the machine's load, unlike wall time), for the same shapes as ``tui_frames.py``.

    mkdir /tmp/main && git archive main app styles simulations | tar -x -C /tmp/main
    uv run python benchmarks/frame_cost.py --against /tmp/main --rounds 3

Each round runs this checkout's code and the other's alternately, in fresh processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

FRAMES = 300
PER_FRAME = 33
"""Messages per frame: 1,000 msg/s at 30 fps."""
SHAPES = ("3-consumers", "100-consumers", "20-queues")


async def frame_cost(shape: str, frames: int) -> dict[str, float]:
    """CPU and wall milliseconds per frame for one shape, in this process."""
    sys.path.insert(0, str(Path(__file__).parent))
    from textual.widgets import TabbedContent

    from broker_sim.domain.events import (
        Acked,
        Confirmed,
        ConnectionChanged,
        ConsumerUp,
        Delivered,
        FlowEvent,
        LinkState,
        Published,
        QueueDepth,
        Routed,
        TracingChanged,
    )
    from broker_sim.settings import Settings
    from broker_sim.tui.app import make_app
    from tui_frames import load_scenario

    scenario = load_scenario(1000.0, shape)
    settings = Settings(url="amqp://guest:guest@localhost:5672/", url_source="benchmark")
    app = make_app(settings, scenarios=[scenario], live=False)
    groups = [(g.name, g.queue, [f"{g.name}-{i}" for i in range(1, g.count + 1)]) for g in scenario.consumers]
    start: list[FlowEvent] = [
        ConnectionChanged(LinkState.CONNECTED, settings.url, "routing traced by the broker"),
        TracingChanged(True, "the broker traces this vhost"),
    ]
    start += [ConsumerUp(c, g, q, 100, "manual") for g, q, names in groups for c in names]
    async with app.run_test(size=(160, 44)) as pilot:
        app.query_one(TabbedContent).active = "pane-bench"
        await pilot.pause()
        tab = app.tabs[0]
        tab.feed(start)
        await pilot.pause()
        seq = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for frame in range(frames):
            events: list[FlowEvent] = []
            for _ in range(PER_FRAME):
                seq += 1
                _, queue, names = groups[seq % len(groups)]
                consumer = names[seq % len(names)]
                mid = f"r1.load.{seq}"
                events += [
                    Published(mid, "load", "bench-x", queue, {}, False, f"#{seq}"),
                    Confirmed(mid, "load"),
                    Routed(mid, "bench-x", queue, (queue,), "trace"),
                    Delivered(mid, queue, consumer, False, queue, "bench-x"),
                    Acked(mid, queue, consumer, 0.1, "done"),
                ]
            if frame % 8 == 0:
                events += [QueueDepth(q, 0, 0, len(names)) for _, q, names in groups]
            tab.feed(events, redraw=False)  # what the frame ticker does with the bridge's buffer
            tab._frame()  # the 30 fps ticker
            if frame % 4 == 0:
                tab._redraw_figures()  # the 8 Hz figures timer
            await asyncio.sleep(1 / 30)  # Textual paints on its own timer, as it does live
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu_ms": cpu / frames * 1000, "wall_ms": wall / frames * 1000}


def run(shape: str, frames: int, code: str | None) -> dict[str, float]:
    """:func:`frame_cost` in a fresh process, on this checkout's code or on ``code``'s."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = f"{code}/app"
    script = (
        f"import asyncio, json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import frame_cost as f; "
        f"print(json.dumps(asyncio.run(f.frame_cost({shape!r}, {frames}))))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Print CPU ms per frame, this code against the other, per shape and round, and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="another checkout (its app/ dir's parent)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    args = parser.parse_args()
    for shape in args.shapes:
        ratios = []
        for n in range(args.rounds):
            mine = run(shape, args.frames, None)
            theirs = run(shape, args.frames, args.against)
            ratios.append(mine["cpu_ms"] / theirs["cpu_ms"])
            print(
                f"[{shape}] round {n + 1} (load {os.getloadavg()[0]:.1f}): CPU per frame this "
                f"{mine['cpu_ms']:.1f} ms, other {theirs['cpu_ms']:.1f} ms ({ratios[-1]:.2f});"
                f" wall per frame this {mine['wall_ms']:.1f} ms, other {theirs['wall_ms']:.1f} ms",
                flush=True,
            )
        print(f"[{shape}] CPU per frame, this / other: median {statistics.median(ratios):.2f}", flush=True)


if __name__ == "__main__":
    main()
