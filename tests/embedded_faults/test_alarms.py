"""Disk and memory alarms on the real broker process: publishers are blocked (``connection.blocked``
with RabbitMQ's reason, then not read), consumers on their own connections drain, the alarm clears
by itself and publishing resumes; no publish is nacked or left hanging, and after kill -9 every
confirmed message that was not consumed is back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker_sim.embedded.store import free_bytes
from tests.embedded_faults.conftest import BrokerFactory
from tests.embedded_faults.publisher import TRANSIENT, RawPublisher
from tests.embedded_faults.support import DEADLINE, Drainer, bodies_in, body, publisher

MiB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path | None]:
    """An 8 MiB tmpfs (None where this process may not mount one: the test then injects ENOSPC)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def _fill_until_blocked(client: RawPublisher, queue: str, size: int, window: int) -> None:
    """Publish windows of messages until the broker blocks the connection (each window confirmed)."""
    deadline = time.monotonic() + 4 * DEADLINE
    while not client.outcomes.blocked:
        assert time.monotonic() < deadline, f"never blocked after {client.sent} messages"
        for _ in range(window):
            client.publish(queue, body(client.sent + 1, size), *([TRANSIENT] if queue == "mem" else []))
        await client.wait("settled-or-blocked", DEADLINE)


def _resident(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_a_full_disk_blocks_publishers_until_consumers_drain(
    small_disk: Path | None, start_broker: BrokerFactory, tmp_path: Path
) -> None:
    """On an 8 MiB filesystem with a 2 MB free-space limit, 32 KiB persistent messages fill it: the
    publisher gets ``connection.blocked`` ("low on disk") before the disk is full, nothing is nacked;
    a consumer drains the queue, the store gives the room back, and the publisher is unblocked."""
    if small_disk is None:  # no tmpfs here: the store's writes fail with ENOSPC instead
        broker = start_broker(faults="write@6=ENOSPC")
    else:
        broker = start_broker(data_dir=small_disk / "data", options=["--disk-free-limit", "2MB"])
    client = await publisher(broker, "fill")
    try:
        await _fill_until_blocked(client, "fill", 32 * 1024, 8)
        assert client.outcomes.blocked == ["low on disk"]
        assert not client.outcomes.nacked
        free_at_block = free_bytes(broker.data_dir)
        held = len(client.outcomes.confirmed)
        drainer = await Drainer(broker.url, "fill").start()
        drained_at = time.monotonic()
        try:
            await client.wait("unblocked", 2 * DEADLINE)
            resumed_after = time.monotonic() - drained_at
        finally:
            await drainer.stop()
        await client.wait("settled", DEADLINE)  # what it sent while blocked is confirmed now
        for _ in range(50):
            client.publish("fill", body(client.sent + 1, 32 * 1024))
        await client.wait("settled", DEADLINE)
        assert not client.outcomes.nacked
        print(
            f"\ndisk: blocked after {held} confirmed 32 KiB messages with {free_at_block:,} bytes free; "
            f"unblocked {resumed_after:.2f} s after a consumer started draining ({len(drainer.seqs)} "
            f"consumed); {'tmpfs 8 MiB' if small_disk else 'injected ENOSPC'}"
        )
    finally:
        await client.close()
    broker.kill_sync()
    broker.start_sync()
    present = set(await bodies_in(broker.url, "fill"))
    assert client.outcomes.confirmed - set(drainer.seqs) <= present
    print(
        f"kill -9: {len(client.outcomes.confirmed)} confirmed, {len(drainer.seqs)} consumed, "
        f"{len(present)} recovered"
    )


async def test_a_full_disk_that_grows_unblocks_publishers(
    small_disk: Path | None, start_broker: BrokerFactory
) -> None:
    """Blocked on a full 8 MiB filesystem, nobody drains; the filesystem grows to 32 MiB: the alarm
    clears by itself (the disk is checked every second) and the blocked publishes are confirmed."""
    if small_disk is None:
        pytest.skip("needs a filesystem it can grow (tmpfs as root); the drain test covers ENOSPC")
    broker = start_broker(data_dir=small_disk / "data", options=["--disk-free-limit", "2MB"])
    client = await publisher(broker, "fill")
    try:
        await _fill_until_blocked(client, "fill", 32 * 1024, 8)
        assert client.outcomes.blocked == ["low on disk"]
        await asyncio.to_thread(
            subprocess.run, ["mount", "-o", "remount,size=32m", str(small_disk)], check=True
        )
        await client.wait("unblocked", DEADLINE)
        await client.wait("settled", DEADLINE)
        assert not client.outcomes.nacked
    finally:
        await client.close()


async def test_memory_alarm_blocks_publishers_until_consumers_drain(
    start_broker: BrokerFactory, tmp_path: Path
) -> None:
    """Above its memory limit the broker blocks publishers ("low on memory"); while they are blocked it
    keeps sending heartbeats and never times them out (this client sends none, and the broker reads
    nothing from it); once a consumer drained the queue it unblocks them and publishing resumes."""
    probe = start_broker(data_dir=tmp_path / "probe")
    assert probe.pid is not None
    baseline = _resident(probe.pid)
    probe.stop_sync()
    limit = baseline + 48 * MiB
    broker = start_broker(options=["--memory-limit", str(limit)])
    assert broker.pid is not None
    client = await publisher(broker, "mem", durable=False, heartbeat=1)
    try:
        await _fill_until_blocked(client, "mem", 64 * 1024, 16)
        assert client.outcomes.blocked == ["low on memory"]
        at_block = _resident(broker.pid)
        # Six heartbeats, 0.5 s apart: longer than the two silent seconds that drop an unblocked peer.
        await client.wait(f"heartbeats>={client.outcomes.heartbeats + 6}", DEADLINE)
        drainer = await Drainer(broker.url, "mem").start()
        drained_at = time.monotonic()
        try:
            await client.wait("unblocked", 2 * DEADLINE)
            resumed_after = time.monotonic() - drained_at
            await client.wait("settled", DEADLINE)
            for _ in range(10):
                client.publish("mem", body(client.sent + 1, 1024), TRANSIENT)
            await client.wait("settled", DEADLINE)
        finally:
            await drainer.stop()
        assert not client.outcomes.nacked
        print(
            f"\nmemory: limit {limit:,} (baseline {baseline:,}); blocked after "
            f"{len(client.outcomes.confirmed)} 64 KiB messages at {at_block:,} bytes resident; "
            f"unblocked {resumed_after:.2f} s after a "
            f"consumer started draining, {_resident(broker.pid):,} bytes resident then"
        )
    finally:
        await client.close()
