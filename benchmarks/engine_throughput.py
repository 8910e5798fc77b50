"""Engine throughput against a bare aio-pika loop of the same shape, in one run, interleaved.

Three variants move N messages producer → direct exchange → one queue → one consumer:

* ``bare``   - aio-pika alone: a confirming producer channel on a connection of its own (as the
  engine's producers have one since issue #10) publishing in windows of 100 (``asyncio.gather``
  per window, unique ``message_id``, ``mandatory=True``), one consumer on a channel of another
  connection with prefetch 100 acking each message;
* ``engine`` - broker-sim's :class:`Engine` running the equivalent scenario on a vhost where
  tracing is off (routing inferred from deliveries);
* ``traced`` - the same engine on a vhost where ``rabbitmqctl trace_on`` was done (routing
  reported by the broker's firehose, read on the engine's observer connection).

Each is timed from the first publish until the N-th ack (wall clock and process CPU time).
The variants run A, B, C, A, B, C, … ``--repeat`` times so that machine noise hits all alike,
and the table shows medians. Private vhosts are made with ``rabbitmqctl`` and deleted at the end.

    uv run python benchmarks/engine_throughput.py [--messages N] [--repeat K] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pamqp.commands import Basic

from broker_sim.broker.rabbitmqctl import run_rabbitmqctl
from broker_sim.domain.events import FlowEvent, Published
from broker_sim.domain.scenario import (
    BindingSpec,
    ConsumerGroupSpec,
    ExchangeSpec,
    ProducerSpec,
    QueueSpec,
    Scenario,
    WorkSpec,
)
from broker_sim.domain.tally import Tally
from broker_sim.domain.urls import parse_url, with_vhost
from broker_sim.settings import Settings
from broker_sim.sim import Engine

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_MESSAGES = 5000
DEFAULT_REPEAT = 7
WINDOW = 100
PREFETCH = 100
ROUTING_KEY = "bench"
VARIANTS = ("bare", "engine", "traced")
LABELS = {
    "bare": "A. bare aio-pika loop",
    "engine": "B. engine, tracing off",
    "traced": "C. engine, tracing on",
}


@dataclass
class Run:
    """One timed run of one variant."""

    variant: str
    messages: int
    seconds: float
    cpu_seconds: float
    user_seconds: float
    system_seconds: float
    traces_seen: int | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_us_per_msg(self) -> float:
        return self.cpu_seconds / self.messages * 1e6


@dataclass
class Stopwatch:
    """Wall clock, process CPU time and its user/system split between ``start()`` and ``stop()``."""

    t0: float = 0.0
    c0: float = 0.0
    os0: tuple[float, float] = (0.0, 0.0)
    t1: float = 0.0
    c1: float = 0.0
    os1: tuple[float, float] = (0.0, 0.0)
    started: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        times = os.times()
        self.t0, self.c0, self.os0, self.started = time.perf_counter(), time.process_time(), times[:2], True

    def stop(self) -> None:
        self.t1, self.c1 = time.perf_counter(), time.process_time()
        self.os1 = os.times()[:2]
        self.done.set()

    def run(self, variant: str, n: int, traces_seen: int | None = None) -> Run:
        return Run(
            variant,
            n,
            self.t1 - self.t0,
            self.c1 - self.c0,
            self.os1[0] - self.os0[0],
            self.os1[1] - self.os0[1],
            traces_seen,
        )


def deadline(n: int) -> float:
    """How long a run may take before the benchmark gives up (50 msg/s would be a broken run)."""
    return 30.0 + n / 50


# -- A. bare aio-pika ---------------------------------------------------------------------------


async def run_bare(url: str, n: int) -> Run:
    """Publish N with pipelined confirms, consume and ack each on a second channel."""
    tag = uuid.uuid4().hex[:8]
    conn = await aio_pika.connect(url, client_properties={"connection_name": f"bench bare {tag}"})
    # publishing on a connection of its own, as the engine does (RabbitMQ's advice: an alarm
    # blocks publishing connections, and acks must still get through)
    publishing = await aio_pika.connect(url, client_properties={"connection_name": f"bench bare {tag} pub"})
    try:
        producer = await publishing.channel(publisher_confirms=True, on_return_raises=False)
        exchange = await producer.declare_exchange(f"bench{tag}.x", aio_pika.ExchangeType.DIRECT)
        queue = await producer.declare_queue(f"bench{tag}.q")
        await queue.bind(exchange, routing_key=ROUTING_KEY)

        consumer = await conn.channel(publisher_confirms=False)
        await consumer.set_qos(prefetch_count=PREFETCH)
        inbound = await consumer.get_queue(queue.name, ensure=False)
        watch = Stopwatch()
        acked = 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal acked
            await message.ack()
            acked += 1
            if acked == n:
                watch.stop()

        await inbound.consume(on_message, no_ack=False)
        gc.collect()
        watch.start()
        refused = 0
        for first in range(1, n + 1, WINDOW):
            results = await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            f"message #{seq}".encode(),
                            message_id=f"{tag}.bare.{seq}",
                            content_type="text/plain",
                            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                        ),
                        ROUTING_KEY,
                        mandatory=True,
                    )
                    for seq in range(first, min(n, first + WINDOW - 1) + 1)
                )
            )
            refused += sum(not isinstance(r, Basic.Ack) for r in results)
        if refused:
            raise RuntimeError(f"bare: {refused} publishes were not confirmed")
        await asyncio.wait_for(watch.done.wait(), deadline(n))
        await consumer.close()
        await producer.queue_delete(queue.name)
        await producer.exchange_delete(exchange.name)
    finally:
        await publishing.close()
        await conn.close()
    return watch.run("bare", n)


# -- B/C. the engine ----------------------------------------------------------------------------


def bench_scenario(n: int) -> Scenario:
    """The engine's equivalent of the bare loop."""
    return Scenario(
        name="bench",
        title="Engine throughput benchmark",
        exchanges=(ExchangeSpec("bench-x", "direct"),),
        queues=(QueueSpec("bench-q"),),
        bindings=(BindingSpec("bench-x", "bench-q", ROUTING_KEY),),
        producers=(
            ProducerSpec("p", "bench-x", rate=1e9, routing_keys=(ROUTING_KEY,), count=n, body="text"),
        ),
        consumers=(
            ConsumerGroupSpec(
                "workers",
                "bench-q",
                count=1,
                prefetch=PREFETCH,
                ack="manual",
                work=WorkSpec("delay", 0.0),
            ),
        ),
    )


async def run_engine(url: str, n: int, *, traced: bool, data_dir: Path) -> Run:
    """Run the scenario on the engine; time from the first Published to the N-th Acked."""
    settings = Settings(url=url, url_source="benchmark", trace=False, data_dir=data_dir)
    engine = Engine(bench_scenario(n), settings, prefix=f"bench{uuid.uuid4().hex[:8]}.", remove_durable=True)
    tally = Tally()
    watch = Stopwatch()

    def on_event(event: FlowEvent) -> None:
        if not watch.started and isinstance(event, Published):
            watch.start()
        tally(event)
        if tally.acked >= n and not watch.done.is_set():
            watch.stop()

    engine.bus.subscribe(on_event)
    gc.collect()
    await engine.start()
    try:
        await asyncio.wait_for(engine.ready(), 30)
        if engine.traced != traced:
            raise RuntimeError(f"engine.traced is {engine.traced}, this variant needs {traced}")
        await asyncio.wait_for(watch.done.wait(), deadline(n))
        traces = tally.routed_traced
    finally:
        await engine.stop()
    if tally.confirmed != n or tally.returned or tally.publish_failed:
        raise RuntimeError(
            f"engine: {tally.confirmed}/{n} confirmed, {tally.returned} returned, "
            f"{tally.publish_failed} failed"
        )
    return watch.run("traced" if traced else "engine", n, traces)


# -- vhosts and machine -------------------------------------------------------------------------


def rabbitmqctl(*args: str) -> str:
    """rabbitmqctl on the machine's node; the benchmark makes its private vhosts with it."""
    return run_rabbitmqctl(*args)


@contextlib.contextmanager
def private_vhosts(user: str) -> Any:
    """Two fresh vhosts, ``…-off`` (no tracing) and ``…-on`` (trace_on); deleted on the way out."""
    base = f"broker-sim-bench-{uuid.uuid4().hex[:8]}"
    made: list[str] = []
    try:
        for suffix, trace in (("off", False), ("on", True)):
            vhost = f"{base}-{suffix}"
            rabbitmqctl("add_vhost", vhost)
            made.append(vhost)
            rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
            if trace:
                rabbitmqctl("trace_on", "-p", vhost)
        yield made[0], made[1]
    finally:
        for vhost in made:
            try:
                rabbitmqctl("delete_vhost", vhost)
            except RuntimeError as exc:
                print(f"warning: {exc}", file=sys.stderr)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    rabbit = "unknown"
    with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
        for line in rabbitmqctl("status").splitlines():
            if line.strip().startswith("RabbitMQ version:"):
                rabbit = line.split(":", 1)[1].strip()
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        root = Path(__file__).resolve().parent.parent
        git = ["git", "-C", str(root)]
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run([*git, "status", "--porcelain", "app"], capture_output=True, text=True)
        if head.returncode == 0:
            commit = head.stdout.strip() + (" + local changes in app/" if dirty.stdout.strip() else "")
    return {
        "commit": commit,
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "rabbitmq": rabbit,
        "python": platform.python_version(),
        "aio_pika": version("aio-pika"),
        "aiormq": version("aiormq"),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_before": os.getloadavg()[0],
    }


# -- the run ------------------------------------------------------------------------------------


def summarise(runs: list[Run], variants: tuple[str, ...]) -> list[dict[str, Any]]:
    """Medians per variant, and ratios to the bare loop.

    ``ratio_to_bare`` compares median rates. ``paired_ratio`` is the median of each round's own
    ratio (a variant against the bare run just before it, so a burst of noise from elsewhere
    mostly hits both); ``cpu_ratio`` is bare CPU per message over this variant's, which is what
    the rate ratio converges to when the client process is the bottleneck (it is here).
    """
    rows = []
    bare = [r for r in runs if r.variant == "bare"]
    bare_rate = statistics.median(r.rate for r in bare) if bare else None
    bare_cpu = statistics.median(r.cpu_us_per_msg for r in bare) if bare else None
    for v in variants:
        mine = [r for r in runs if r.variant == v]
        rate = statistics.median(r.rate for r in mine)
        cpu = statistics.median(r.cpu_us_per_msg for r in mine)
        paired = [m.rate / b.rate for m, b in zip(mine, bare, strict=False)] if bare else []
        rows.append(
            {
                "variant": v,
                "label": LABELS[v],
                "runs": len(mine),
                "msgs_per_s": rate,
                "msgs_per_s_min": min(r.rate for r in mine),
                "msgs_per_s_max": max(r.rate for r in mine),
                "cpu_us_per_msg": cpu,
                "user_us_per_msg": statistics.median(r.user_seconds / r.messages * 1e6 for r in mine),
                "system_us_per_msg": statistics.median(r.system_seconds / r.messages * 1e6 for r in mine),
                "ratio_to_bare": rate / bare_rate if bare_rate else None,
                "paired_ratio": statistics.median(paired) if paired else None,
                "cpu_ratio": bare_cpu / cpu if bare_cpu else None,
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    def x(value: float | None) -> str:
        return f"{value:.2f}x" if value is not None else "-"

    lines = [
        "| variant | msgs/s (median) | min-max msgs/s | CPU µs/msg | ratio to bare "
        "| paired ratio | CPU ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['msgs_per_s']:,.0f} | {row['msgs_per_s_min']:,.0f}-"
            f"{row['msgs_per_s_max']:,.0f} | {row['cpu_us_per_msg']:.0f} | {x(row['ratio_to_bare'])} "
            f"| {x(row['paired_ratio'])} | {x(row['cpu_ratio'])} |"
        )
    return "\n".join(lines)


async def bench(args: argparse.Namespace, off_url: str, on_url: str, data_dir: Path) -> list[Run]:
    def variant(name: str, n: int) -> Callable[[], Awaitable[Run]]:
        if name == "bare":
            return lambda: run_bare(off_url, n)
        if name == "engine":
            return lambda: run_engine(off_url, n, traced=False, data_dir=data_dir)
        return lambda: run_engine(on_url, n, traced=True, data_dir=data_dir)

    if args.warmup:
        warm = min(args.messages, 500)
        for name in args.variants:
            await variant(name, warm)()
        print(f"warm-up done ({warm} messages each)", file=sys.stderr)
    runs: list[Run] = []
    for round_ in range(1, args.repeat + 1):
        for name in args.variants:
            run = await variant(name, args.messages)()
            runs.append(run)
            extra = f", {run.traces_seen} traces seen" if run.traces_seen is not None else ""
            print(
                f"round {round_}/{args.repeat} {name:>6}: {run.rate:8,.0f} msgs/s, "
                f"{run.cpu_us_per_msg:4.0f} µs CPU/msg ({run.seconds:.2f} s{extra})",
                file=sys.stderr,
            )
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", "-n", type=int, default=DEFAULT_MESSAGES, help="messages per run")
    parser.add_argument("--repeat", "-k", type=int, default=DEFAULT_REPEAT, help="rounds of A,B,C")
    parser.add_argument("--json", type=Path, help="also write the results (and every run) here")
    parser.add_argument(
        "--url",
        default=os.environ.get("BROKER_SIM_BENCH_URL", DEFAULT_URL),
        help="the broker (its vhost is replaced by private ones); default %(default)s",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated subset of bare,engine,traced (e.g. to profile one); default all",
    )
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the warm-up round")
    args = parser.parse_args(argv)
    args.variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    unknown = set(args.variants) - set(VARIANTS)
    if unknown or not args.variants:
        parser.error(f"--variants takes some of {', '.join(VARIANTS)}")
    if args.messages < 1 or args.repeat < 1:
        parser.error("--messages and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    with private_vhosts(parse_url(args.url).user) as (off, on), tempfile.TemporaryDirectory() as tmp:
        runs = asyncio.run(bench(args, with_vhost(args.url, off), with_vhost(args.url, on), Path(tmp)))
    info["loadavg_after"] = os.getloadavg()[0]
    rows = summarise(runs, args.variants)
    print(
        f"\n{args.messages} messages x {args.repeat} rounds, interleaved, at {info['commit']}; "
        f"{info['nproc']} x {info['cpu']}, RabbitMQ {info['rabbitmq']}, Python {info['python']}, "
        f"aio-pika {info['aio_pika']}, {info['date']}; load average "
        f"{info['loadavg_before']:.2f} before, {info['loadavg_after']:.2f} after\n"
    )
    print(table(rows))
    if args.json:
        payload = {
            "machine": info,
            "messages": args.messages,
            "repeat": args.repeat,
            "summary": rows,
            "runs": [asdict(r) | {"msgs_per_s": r.rate, "cpu_us_per_msg": r.cpu_us_per_msg} for r in runs],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
