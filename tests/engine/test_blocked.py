"""A broker under a resource alarm blocks publishing: producers say "blocked: <reason>" and the
consumers, on a connection of their own, still drain the backlog; once it clears, publishing resumes.

The alarm is raised on a private broker of the test's own (never the shared one), on each kind:

- a private RabbitMQ node: ``set_vm_memory_high_watermark`` to almost nothing raises a memory alarm
  ("low on memory"), back to 0.4 clears it;
- the embedded broker: its data folder is a tmpfs of its own with ``--disk-free-limit``; a ballast
  file that leaves less free than the limit raises the disk alarm ("low on disk") at the next check
  (every second), removing it clears the alarm. A private filesystem, so nothing else moves its free
  space under the test.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from broker_sim.broker.handle import BrokerHandle, EmbeddedHandle, LocalNodeHandle
from broker_sim.broker.local_node import find_rabbit_bin
from broker_sim.domain.events import Acked, Confirmed, ProducerState
from broker_sim.domain.scenario import ConsumerGroupSpec, ProducerSpec, QueueSpec, Scenario, WorkSpec
from broker_sim.embedded.store import free_bytes
from broker_sim.settings import Settings
from broker_sim.sim import Engine
from tests.support import DEADLINE, Watcher, missing_rabbitmq

BACKLOG = 300
PRESSED = Scenario(
    name="pressed",
    title="a backlog under an alarm",
    queues=(QueueSpec("jobs"),),
    producers=(ProducerSpec("p", "", rate=0, routing_keys=("jobs",)),),
    consumers=(ConsumerGroupSpec("w", "jobs", count=0, prefetch=10, work=WorkSpec("delay", 0.005)),),
)
DISK_SIZE = "16m"
DISK_FREE_LIMIT = 8_000_000
"""Bytes: the embedded broker's ``--disk-free-limit`` on its 16 MiB tmpfs."""
LEFT_FREE = 2 * 1024 * 1024
"""Bytes the ballast leaves free: well under the limit."""


class Alarm:
    """Raises and clears a resource alarm on a private broker; ``reason`` is what it blocks with."""

    def __init__(self, handle: BrokerHandle, disk: Path | None) -> None:
        self.handle = handle
        self.disk = disk
        self.reason = "low on disk" if disk is not None else "low on memory"
        self._log_from = 0

    async def raise_(self) -> None:
        """Raise it; returns once the broker has it on (a publish after this is blocked)."""
        if isinstance(self.handle, LocalNodeHandle):
            await asyncio.to_thread(self.handle.node.ctl, "set_vm_memory_high_watermark", "0.000001")
            return
        assert self.disk is not None
        log = self.disk / "data" / "broker.log"
        self._log_from = log.stat().st_size
        ballast = self.disk / "ballast"
        ballast.write_bytes(b"\0" * max(free_bytes(self.disk) - LEFT_FREE, 0))
        # The broker checks its disk every second and logs the alarm when it sets it.
        await _until(lambda: "disk alarm set" in log.read_text()[self._log_from :], "the disk alarm set")

    async def clear(self) -> None:
        """Clear it (the broker unblocks its publishers by itself)."""
        if isinstance(self.handle, LocalNodeHandle):
            await asyncio.to_thread(self.handle.node.ctl, "set_vm_memory_high_watermark", "0.4")
            return
        assert self.disk is not None
        (self.disk / "ballast").unlink(missing_ok=True)


async def _until(predicate: Callable[[], bool], what: str) -> None:
    # A file says nothing when it changes: look again every 50 ms, until a deadline.
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {DEADLINE:g} s waiting for: {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own for the embedded broker's data (mounting needs root, as the fault suite's)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a private tmpfs (run as root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture(params=["embedded", "local node"])
async def alarm(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Alarm]:
    """A private broker, each kind in turn, with the way to raise an alarm on it."""
    handle: EmbeddedHandle | LocalNodeHandle
    disk: Path | None = None
    if request.param == "embedded":
        disk = request.getfixturevalue("small_disk")
        handle = EmbeddedHandle(disk / "data", options=["--disk-free-limit", str(DISK_FREE_LIMIT)])
    else:
        if find_rabbit_bin() is None:
            missing_rabbitmq("rabbitmq-server is not installed: a private node needs it")
        handle = LocalNodeHandle(tmp_path)
    await handle.start()
    on = Alarm(handle, disk)
    try:
        yield on
    finally:
        await on.clear()
        await handle.close()


async def test_an_alarm_blocks_the_producers_and_the_consumers_still_drain(
    alarm: Alarm, tmp_path: Path
) -> None:
    broker = alarm.handle
    settings = Settings(url=broker.url, url_source="test", data_dir=tmp_path)
    engine = Engine(PRESSED, settings, broker=broker, prefix=f"t{uuid.uuid4().hex[:8]}.", remove_durable=True)
    w = Watcher(engine.bus)
    await engine.start()
    try:
        await asyncio.wait_for(engine.ready(), DEADLINE)
        await engine.burst("p", BACKLOG)  # a backlog waits in the queue, nobody consuming yet
        assert len(w.of(Confirmed)) == BACKLOG
        await alarm.raise_()
        publishing = asyncio.create_task(engine.burst("p", 1))  # the broker blocks on a publish
        await w.until(
            lambda: any(e.blocked for e in w.of(ProducerState)), "the producer shown blocked", timeout=60
        )
        reason = next(e.blocked for e in w.of(ProducerState) if e.blocked)
        assert alarm.reason in reason
        await engine.scale("w", 2)  # consumers on their own connection still get their acks through
        await w.until(lambda: len(w.of(Acked)) >= BACKLOG, "the backlog drained under the alarm", timeout=60)
        assert not publishing.done()  # while the one new publish still waits
        assert len(w.of(Confirmed)) == BACKLOG
        await alarm.clear()
        await w.until(lambda: not w.of(ProducerState)[-1].blocked, "the producer unblocked", timeout=60)
        await asyncio.wait_for(publishing, DEADLINE)
        await w.until(lambda: len(w.of(Acked)) == BACKLOG + 1, "the held publish delivered")
        assert len(w.of(Confirmed)) == BACKLOG + 1
    finally:
        await engine.stop()
