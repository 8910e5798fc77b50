"""What the store's writes cost, in process on a real file: an ack is written at once but costs no
fsync of its own, and the disk alarm checks free space by what the store wrote, not after every write
(the alarm still comes after the very write that crossed the limit); closing the store while a
flush is in progress waits for it, and every publish waiting on the store hears back."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from broker_sim.embedded import alarms
from broker_sim.embedded.alarms import DISK, ResourceMonitor
from broker_sim.embedded.codec import shortstr
from broker_sim.embedded.store import Store, read_log

DEADLINE = 10.0
ADDRESS = shortstr("") + shortstr("q")  # the default exchange, routing key "q"


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The fds fsync'd from now on (the real fsync still runs)."""
    calls: list[int] = []
    real = os.fsync

    def counted(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counted)
    return calls


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An opened store in ``tmp_path/data``, closed after the test."""
    opened = Store(tmp_path / "data")
    opened.open(list)
    opened.start()
    yield opened
    await opened.close()


async def synced(store: Store) -> None:
    """Wait until everything appended so far is fsync'd."""
    done = asyncio.get_running_loop().create_future()
    store.when_synced(store.appended, lambda: done.done() or done.set_result(None))
    await asyncio.wait_for(done, DEADLINE)


async def written(store: Store) -> None:
    """Wait for the store's next successful write."""
    done = asyncio.get_running_loop().create_future()
    store.on_health = lambda error: error is None and not done.done() and done.set_result(None)
    await asyncio.wait_for(done, DEADLINE)


async def test_an_ack_is_written_at_once_and_fsync_d_only_when_someone_waits(
    store: Store, fsyncs: list[int]
) -> None:
    ids = [store.add_message("q", ADDRESS, b"\x00\x00", b"m%d" % i, 0.0) for i in range(3)]
    await synced(store)
    after_publish = len(fsyncs)

    store.remove(ids[:2])
    await written(store)
    state, _ = read_log(store.path)
    assert sorted(state.messages) == [ids[2]], "the removal is in the file (a kill -9 keeps it)"
    assert len(fsyncs) == after_publish, "a removal alone is not fsync'd"

    await synced(store)  # tx.commit of acks waits like this: one fsync covers the removal
    assert len(fsyncs) == after_publish + 1


async def test_a_persistent_message_after_an_ack_is_fsync_d_with_it(store: Store, fsyncs: list[int]) -> None:
    first = store.add_message("q", ADDRESS, b"\x00\x00", b"acked", 0.0)
    await synced(store)
    before = len(fsyncs)
    store.remove([first])
    second = store.add_message("q", ADDRESS, b"\x00\x00", b"kept", 0.0)
    await synced(store)
    assert len(fsyncs) - before == 1
    state, _ = read_log(store.path)
    assert sorted(state.messages) == [second]


async def test_the_disk_is_checked_by_bytes_written_and_the_alarm_comes_after_the_crossing_write(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's own writes fill a disk that had 1 MB above the limit: far fewer ``statvfs`` than
    writes, and the alarm is on right after the write that took free space below the limit."""
    limit, headroom, size = 50_000_000, 1_000_000, 10_000
    checks: list[int] = []

    def free_bytes(directory: Path) -> int:
        free = limit + headroom - store.bytes_written
        checks.append(free)
        return free

    monkeypatch.setattr(alarms, "free_bytes", free_bytes)
    changes: list[frozenset[str]] = []
    monitor = ResourceMonitor(store, limit, 1 << 62, changes.append)
    monitor.start()
    monitor.stop()  # only the checks the writes cause
    writes = 0
    while not changes:
        assert writes < 2 * headroom // size, "the alarm never came"
        store.add_message("q", ADDRESS, b"\x00\x00", b"x" * size, 0.0)
        await synced(store)
        writes += 1
    assert changes == [frozenset({DISK})]
    assert checks[-1] < limit <= checks[-1] + size + 100, "raised by the write that crossed the limit"
    assert len(checks) < writes // 4, f"{len(checks)} checks for {writes} writes"


async def test_a_record_appended_just_after_a_flush_ends_is_written(store: Store) -> None:
    """What a write's own callback sets off (a connection unblocked by it, reading the publishes it
    held) runs before the flush task's done callback: a record appended then, with its publisher
    waiting for the fsync, must still be written — not wait for a next publish that may never come."""
    loop = asyncio.get_running_loop()
    confirmed = loop.create_future()
    late: list[int] = []

    def publish_late() -> None:  # a held publish: its record and its confirm's wait, together
        late.append(store.add_message("q", ADDRESS, b"\x00\x00", b"late", 0.0))
        store.when_synced(store.appended, lambda: confirmed.done() or confirmed.set_result(None))

    def on_health(error: OSError | None) -> None:
        if error is None and not late:  # inside the flush, where the disk alarm clears
            loop.call_soon(publish_late)

    store.on_health = on_health
    store.add_message("q", ADDRESS, b"\x00\x00", b"first", 0.0)
    await asyncio.wait_for(confirmed, DEADLINE)  # timed out before: no flush was left to write it
    state, _ = read_log(store.path)
    assert late[0] in state.messages


class HeldFsync:
    """Holds the log's fsync in the writer thread until :meth:`release` (the real fsync then runs):
    a flush stays in progress, deterministically, for as long as the test needs. It notes whether
    the log's fd was still open, and still the log, when the held fsync went on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
        self.entered = threading.Event()
        self._released = threading.Event()
        self.fd_was: list[str] = []
        self._log = log.stat().st_ino
        real = os.fsync

        def held(fd: int) -> None:
            try:
                is_log = os.fstat(fd).st_ino == self._log
            except OSError:
                is_log = False
            if is_log:
                self.entered.set()
                self._released.wait(DEADLINE)
                try:
                    self.fd_was.append("the log" if os.fstat(fd).st_ino == self._log else "another file")
                except OSError:
                    self.fd_was.append("closed")
            real(fd)

        monkeypatch.setattr(os, "fsync", held)

    async def wait_entered(self) -> None:
        """Return once a flush is inside the log's fsync."""
        assert await asyncio.to_thread(self.entered.wait, DEADLINE), "no flush reached the fsync"

    def release(self) -> None:
        """Let every held fsync, and every later one, go on."""
        self._released.set()


class Publishes:
    """Appends as the broker does for a publish with confirms: the record, then a wait on its mark;
    the wait's end is a confirm (the mark is synced) or a nack."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.confirmed: list[int] = []
        self.nacked: list[int] = []
        self.waiting: set[int] = set()

    def publish(self, text: bytes, then: Callable[[], None] | None = None) -> int:
        store = self.store
        store_id = store.add_message("q", ADDRESS, b"\x00\x00", text, 0.0)
        mark = store.appended
        self.waiting.add(store_id)

        def settled() -> None:
            self.waiting.discard(store_id)
            (self.confirmed if store.synced >= mark else self.nacked).append(store_id)
            if then is not None:
                then()

        store.when_synced(mark, settled)
        return store_id


async def test_close_during_a_flush_waits_for_it_and_loses_nothing_confirmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is closed while a flush is inside its fsync, with a record appended during that
    write and another after close began: close returns only after the flush, without an exception;
    the file was still open under the write; every publish was confirmed, and every confirmed
    record is in the log when the data dir is opened again."""
    store = Store(tmp_path / "data")
    store.open(list)
    store.start()
    fsync = HeldFsync(monkeypatch, store.path)
    publishes = Publishes(store)

    publishes.publish(b"in the held write")
    await fsync.wait_entered()
    publishes.publish(b"appended during the write")
    closing = asyncio.create_task(store.close())
    await asyncio.sleep(0)  # close runs up to its first wait
    publishes.publish(b"appended while close waits")
    assert not closing.done(), "close did not wait for the running flush"

    fsync.release()
    await asyncio.wait_for(closing, DEADLINE)  # raises whatever close raised

    assert fsync.fd_was and set(fsync.fd_was) == {"the log"}, "the log's fd was closed under the write"
    assert not publishes.waiting and not publishes.nacked
    reopened = Store(tmp_path / "data")
    state = reopened.open(list)  # also proves close released the data dir's lock
    await reopened.close()
    assert set(publishes.confirmed) <= set(state.messages)
    assert len(publishes.confirmed) == 3


async def test_a_publish_set_off_by_the_last_write_before_close_is_written_and_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The confirm of the flush's last record sets off one more publish (a blocked connection read
    again, say) after the flush ended but before close resumed: its record is written before the
    file is closed and its publisher hears back (confirmed), not left waiting forever."""
    store = Store(tmp_path / "data")
    store.open(list)
    store.start()
    fsync = HeldFsync(monkeypatch, store.path)
    publishes = Publishes(store)
    loop = asyncio.get_running_loop()
    late: list[int] = []

    publishes.publish(b"held", then=lambda: loop.call_soon(lambda: late.append(publishes.publish(b"late"))))
    await fsync.wait_entered()
    closing = asyncio.create_task(store.close())
    await asyncio.sleep(0)
    fsync.release()
    await asyncio.wait_for(closing, DEADLINE)

    assert late, "the held write's confirm never came"
    assert not publishes.waiting, "a publisher was left waiting after close"
    assert not publishes.nacked
    assert set(fsync.fd_was) == {"the log"}
    state, _ = read_log(store.path)
    assert set(publishes.confirmed) <= set(state.messages)
    assert late[0] in publishes.confirmed
