"""``broker-sim broker``: run the embedded broker on its own until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from pathlib import Path

from broker_sim.embedded.alarms import (
    DEFAULT_DISK_FREE_LIMIT,
    DEFAULT_MEMORY_LIMIT,
    check_disk_free_limit,
    parse_memory_limit,
    parse_size,
)
from broker_sim.embedded.faults import FaultSpecError, faults_from_env
from broker_sim.embedded.server import Server
from broker_sim.embedded.store import StoreLocked

PASSWORD_ENV = "BROKER_SIM_BROKER_PASSWORD"
"""The password can come from the environment, so it never shows in a process list."""
WATCH_STDIN_ENV = "BROKER_SIM_BROKER_WATCH_STDIN"
"""Set by the launcher: the broker exits when its parent's end of stdin closes (the parent died)."""
DEFAULT_USER = "broker-sim"
READY_PREFIX = "broker-sim embedded broker listening on "
MANAGEMENT_PREFIX = "management API (read-only, loopback): "


def default_data_dir() -> Path:
    """The user's data folder for broker-sim, ``…/embedded``."""
    from platformdirs import user_data_path

    return user_data_path("broker-sim") / "embedded"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``broker-sim broker``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5672, help="port (default 5672; 0 picks a free one)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where durable state lives (default: the user's data folder, broker-sim/embedded)",
    )
    parser.add_argument(
        "--user", default=DEFAULT_USER, help=f"the user clients log in as (default {DEFAULT_USER})"
    )
    parser.add_argument(
        "--consumer-timeout",
        type=int,
        default=None,
        metavar="MS",
        help="close a channel holding a delivery unacked longer than this "
        "(default 1800000, as RabbitMQ 3.10)",
    )
    parser.add_argument(
        "--management-port",
        type=int,
        default=None,
        help="serve the read-only management API (HTTP, loopback only) on this port; 0 picks one "
        "(default: off)",
    )
    parser.add_argument(
        "--password",
        default=None,
        help=f"its password (default: ${PASSWORD_ENV}, else generated and written to <data-dir>/password)",
    )
    parser.add_argument(
        "--disk-free-limit",
        type=_size,
        default=DEFAULT_DISK_FREE_LIMIT,
        metavar="SIZE",
        help=f"block publishers while the data dir's disk has less free space than this (default "
        f"{DEFAULT_DISK_FREE_LIMIT}, RabbitMQ's default; at least 1MiB, the room the store needs to "
        "compact while consumers drain; units kB MB GB or KiB MiB GiB)",
    )
    parser.add_argument(
        "--memory-limit",
        type=_memory,
        default=DEFAULT_MEMORY_LIMIT,
        metavar="LIMIT",
        help=f"block publishers while the broker uses more memory than this: a fraction of RAM or a "
        f"size (default {DEFAULT_MEMORY_LIMIT} = 40%% of this machine's RAM, RabbitMQ's default)",
    )


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _memory(text: str) -> int:
    try:
        return parse_memory_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _password(given: str | None, data_dir: Path) -> tuple[str, str]:
    """The password and where it came from."""
    if given:
        return given, "given"
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env, f"from ${PASSWORD_ENV}"
    path = data_dir / "password"
    if path.exists():
        return path.read_text().strip(), f"in {path}"
    data_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password, f"generated, in {path}"


def run(args: argparse.Namespace) -> int:
    """Run the broker until SIGINT/SIGTERM (or the parent goes away, when launched as a child)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        check_disk_free_limit(args.disk_free_limit)
    except ValueError as exc:
        print(f"broker-sim broker: {exc}", file=sys.stderr)
        return 2
    data_dir: Path = args.data_dir or default_data_dir()
    try:
        faults = faults_from_env()
    except FaultSpecError as exc:
        print(f"broker-sim broker: {exc}", file=sys.stderr)
        return 2
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    password, source = _password(args.password, data_dir)
    server = Server(
        {args.user: password},
        host=args.host,
        port=args.port,
        data_dir=data_dir,
        disk_free_limit=args.disk_free_limit,
        memory_limit=args.memory_limit,
        faults=faults,
        management_port=args.management_port,
        consumer_timeout_ms=args.consumer_timeout,
    )
    try:
        return asyncio.run(_serve(server, data_dir, args.user, source))
    except StoreLocked as exc:
        print(f"broker-sim broker: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"broker-sim broker: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1


async def _serve(server: Server, data_dir: Path, user: str, source: str) -> int:
    host = server.host
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if os.environ.get(WATCH_STDIN_ENV):
        _watch_stdin(loop, stop)
    shown_host = f"[{host}]" if ":" in host else host
    if server.management is not None:
        # Printed before the ready line: a launcher reading the ready line has the port by then.
        print(f"{MANAGEMENT_PREFIX}http://127.0.0.1:{server.management.port}/api/", flush=True)
    print(f"{READY_PREFIX}amqp://{user}:****@{shown_host}:{server.port}/", flush=True)
    print(f"password: {source}", flush=True)
    print(f"data dir: {data_dir} ({server.recovered} persistent messages recovered)", flush=True)
    store = server.broker.store
    for offset, skipped in store.damage if store is not None else ():
        print(
            f"store: skipped a damaged record at byte {offset} of {data_dir / 'store.log'} "
            f"({skipped} bytes); the records after it were recovered, the damaged log is kept as "
            "store.log.damaged-*",
            flush=True,
        )
    monitor = server.monitor
    print(
        f"limits: publishers are blocked below {monitor.disk_free_limit:,} bytes of free disk "
        f"or above {monitor.memory_limit:,} bytes of memory",
        flush=True,
    )
    await stop.wait()
    await server.stop()
    print("broker-sim embedded broker stopped", flush=True)
    return 0


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    def on_readable() -> None:
        with contextlib.suppress(OSError):
            if os.read(sys.stdin.fileno(), 4096):
                return
        loop.remove_reader(sys.stdin.fileno())
        stop.set()

    loop.add_reader(sys.stdin.fileno(), on_readable)
