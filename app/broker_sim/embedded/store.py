"""Persistence: an append-only log of durable topology and persistent messages, fsync'd in batches.

Each record is ``length, crc32, type`` then its payload. A confirm for a persistent message waits
until the fsync that covers its record (see :meth:`Store.when_synced`); a failed write is never
confirmed. Removals (acks) are written at once but not fsync'd on their own: the next fsync covers
them. On start the log is replayed (a torn tail from a crash is dropped, a damaged record
mid-log is skipped and reported) and rewritten with only what is live (compaction); the log is
compacted again whenever it grows well past what is live, or when the disk runs short.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker_sim.embedded.codec import decode_table, encode_table, read_shortstr, shortstr
from broker_sim.embedded.faults import Faults, WriteFault

log = logging.getLogger(__name__)

LOG_NAME = "store.log"
LOCK_NAME = "lock"
RECORD = struct.Struct(">IIB")
"""A record's header: payload length, crc32 of the payload (seeded with the kind), kind."""
_MESSAGE = struct.Struct(">Qd")
_ID = struct.Struct(">Q")
_LEN = struct.Struct(">I")

EXCHANGE, EXCHANGE_DELETE, QUEUE, QUEUE_DELETE, BIND, UNBIND, MESSAGE, REMOVE = range(1, 9)
_KINDS = frozenset(range(1, 9))
COMPACT_SLACK = 64 * 1024 * 1024
"""Compact when the log holds this much more than what is live (and more than twice the live size)."""
RECLAIM_MIN = 64 * 1024
"""Short of disk, compact once that gives back at least this much (and half the log)."""
DISK_RESERVE_MIN = 16 * RECLAIM_MIN
"""The least free space (1 MiB) the disk alarm may leave the store: once publishers are blocked,
draining still writes (every ack appends a removal; the write that crossed the limit may overshoot
it), and compaction only starts with more than :data:`RECLAIM_MIN` free above what is live. Below
this the alarm could come only from a full disk (ENOSPC), with no room left to compact: it would
never clear."""
RETRY_FIRST, RETRY_MAX = 0.05, 2.0
"""Pauses (s) between retries of a failed write: the first, and the longest."""


class StoreLocked(RuntimeError):
    """Another broker process uses this data dir."""


@dataclass
class StoredMessage:
    """A persistent message as recovered from the log."""

    store_id: int
    queue: str
    exchange: str
    routing_key: str
    props: bytes
    body: bytes
    expires_wall: float


@dataclass
class Recovered:
    """What the log held: durable topology and the persistent messages of durable queues."""

    exchanges: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    bindings: dict[tuple[str, str, str, bytes, str], dict[str, Any]] = field(default_factory=dict)
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    damage: list[tuple[int, int]] = field(default_factory=list)
    """Damaged records skipped mid-log: (byte offset, bytes skipped)."""
    torn_tail: int = 0
    """Bytes of a torn tail dropped (a crash during a write)."""


def _record(kind: int, payload: bytes) -> bytes:
    return RECORD.pack(len(payload), zlib.crc32(payload, kind), kind) + payload


def binding_key(entry: dict[str, Any]) -> tuple[str, str, str, bytes, str]:
    """Identity of a binding record (a queue and an exchange may share a name)."""
    return (
        entry["exchange"],
        entry["queue"],
        entry["routing_key"],
        encode_table(entry.get("arguments") or {}),
        entry.get("destination_type", "queue"),
    )


def read_log(path: Path) -> tuple[Recovered, int]:
    """Replay a log; returns the state and the highest message id seen.

    A torn tail (a crash during a write: nothing valid follows) is dropped. A damaged record with
    valid records after it is skipped and reported in :attr:`Recovered.damage`: the records after
    it are replayed, never silently dropped with it.
    """
    state = Recovered()
    top = 0
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return state, 0
    offset = 0
    end = len(data)
    while offset + RECORD.size <= end:
        size, crc, kind = RECORD.unpack_from(data, offset)
        start = offset + RECORD.size
        payload = data[start : start + size]
        if len(payload) < size or kind not in _KINDS or zlib.crc32(payload, kind) != crc:
            following = _next_record(data, offset + 1, start + size)
            if following is None:
                log.warning(
                    "store: dropping a torn tail of %d bytes at byte %d of %s", end - offset, offset, path
                )
                state.torn_tail = end - offset
                break
            state.damage.append((offset, following - offset))
            log.error(
                "store: skipping a damaged record at byte %d of %s (%d bytes); replaying what follows",
                offset,
                path,
                following - offset,
            )
            offset = following
            continue
        offset = start + size
        if kind == MESSAGE:
            stored = decode_message(payload)
            state.messages[stored.store_id] = stored
            top = max(top, stored.store_id)
        elif kind == REMOVE:
            for (store_id,) in _ID.iter_unpack(payload):
                state.messages.pop(store_id, None)
        else:
            entry = decode_table(_LEN.pack(len(payload)) + payload)
            _apply(state, kind, entry)
    return state, top


def _valid_at(data: bytes, offset: int) -> bool:
    if offset + RECORD.size > len(data):
        return False
    size, crc, kind = RECORD.unpack_from(data, offset)
    start = offset + RECORD.size
    return (
        kind in _KINDS and start + size <= len(data) and zlib.crc32(data[start : start + size], kind) == crc
    )


def _next_record(data: bytes, scan_from: int, hint: int) -> int | None:
    """Where the next valid record after a damaged one starts: where its length says (only the
    payload was damaged), else the first offset holding a whole record with a good checksum."""
    if hint > scan_from and _valid_at(data, hint):
        return hint
    for offset in range(scan_from, len(data) - RECORD.size + 1):
        if _valid_at(data, offset):
            return offset
    return None


def _apply(state: Recovered, kind: int, entry: dict[str, Any]) -> None:
    if kind == EXCHANGE:
        state.exchanges[entry["name"]] = entry
    elif kind == EXCHANGE_DELETE:
        state.exchanges.pop(entry["name"], None)
        for key in [k for k in state.bindings if k[0] == entry["name"]]:
            del state.bindings[key]
    elif kind == QUEUE:
        state.queues[entry["name"]] = entry
    elif kind == QUEUE_DELETE:
        state.queues.pop(entry["name"], None)
        for key in [k for k in state.bindings if k[1] == entry["name"]]:
            del state.bindings[key]
        for store_id in [i for i, m in state.messages.items() if m.queue == entry["name"]]:
            del state.messages[store_id]
    elif kind == BIND:
        state.bindings[binding_key(entry)] = entry
    elif kind == UNBIND:
        state.bindings.pop(binding_key(entry), None)


def _encode_message(
    store_id: int, queue: str, address: bytes, props: bytes, body: bytes, expires_wall: float
) -> bytes:
    return (
        _MESSAGE.pack(store_id, expires_wall)
        + shortstr(queue)
        + address
        + _LEN.pack(len(props))
        + props
        + body
    )


def decode_message(payload: bytes) -> StoredMessage:
    """A MESSAGE record's payload, decoded."""
    store_id, expires_wall = _MESSAGE.unpack_from(payload, 0)
    queue, offset = read_shortstr(payload, _MESSAGE.size)
    exchange, offset = read_shortstr(payload, offset)
    routing_key, offset = read_shortstr(payload, offset)
    (size,) = _LEN.unpack_from(payload, offset)
    offset += 4
    props = payload[offset : offset + size]
    return StoredMessage(
        store_id, queue, exchange, routing_key, props, payload[offset + size :], expires_wall
    )


class Store:
    """The append-only log of one data dir. Writes are buffered; one task writes and fsyncs them.

    A record leaves the buffer only after the write *and* the fsync that cover it succeeded, so a
    confirm can never go out for a record that is not on disk. When a write or fsync fails (ENOSPC,
    EIO), the file is truncated back to the last good offset (no torn record is left mid-log), the
    publishes waiting on that write are nacked (:attr:`failed_mark`), the records stay in the buffer
    and the write is retried with a growing pause; :attr:`on_health` hears about both the failure
    and the recovery (the disk alarm uses it).
    """

    def __init__(self, directory: Path, faults: Faults | None = None) -> None:
        self.directory = directory
        self.path = directory / LOG_NAME
        self.faults = faults or Faults()
        self.compact_slack = COMPACT_SLACK if self.faults.compact_slack is None else self.faults.compact_slack
        self.low_on_disk = False
        """Set by the disk alarm: compact as soon as what is live fits in the free space."""
        self.on_health: Callable[[OSError | None], None] = lambda error: None
        """Told about a failed write (the error) and about every successful one (None)."""
        self.error: OSError | None = None
        """The error of the last write, while writes fail."""
        self.damage: list[tuple[int, int]] = []
        self._lock_fd = -1
        self._fd = -1
        self._buffer = bytearray()
        self._appended = 0
        self._synced = 0
        self._durable_mark = 0  # the mark of the last record fsync'd at once (all but removals)
        self.bytes_written = 0
        """Bytes written to the disk since the store opened (log writes and compactions)."""
        self._failed_mark = 0
        self._waiters: deque[tuple[int, Callable[[], None]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._retry_delay = RETRY_FIRST
        self._truncate_to: int | None = None
        self._next_id = 1
        self._live: dict[int, bytes] = {}  # store id -> its record, for compaction
        self._live_bytes = 0
        self._file_bytes = 0
        self._topology: Callable[[], Iterable[bytes]] = list

    def open(self, topology: Callable[[], Iterable[bytes]]) -> Recovered:
        """Lock the data dir, replay the log, and start a compacted one. ``topology`` gives the live
        topology records whenever the log is compacted."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The log holds message bodies: only the broker's user may read the folder.
        os.chmod(self.directory, 0o700)
        self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StoreLocked(
                f"another broker uses {self.directory} (is another broker-sim running? quit it, or give "
                "this one a data folder of its own with BROKER_SIM_DATA_DIR or --data-dir)"
            ) from None
        state, top = read_log(self.path)
        self.damage = state.damage
        if state.damage:
            # Compaction is about to rewrite the log: keep the damaged one for a post-mortem.
            kept = self.path.with_name(f"{LOG_NAME}.damaged-{int(time.time())}")
            shutil.copyfile(self.path, kept)
            os.chmod(kept, 0o600)
        self._next_id = top + 1
        self._topology = topology
        for stored in state.messages.values():
            record = _record(
                MESSAGE,
                _encode_message(
                    stored.store_id,
                    stored.queue,
                    shortstr(stored.exchange) + shortstr(stored.routing_key),
                    stored.props,
                    stored.body,
                    stored.expires_wall,
                ),
            )
            self._live[stored.store_id] = record
            self._live_bytes += len(record)
        return state

    def start(self) -> None:
        """Write the compacted log (after the broker rebuilt its topology from the recovered state)."""
        records = self._snapshot()
        self._buffer.clear()
        temporary = self.path.with_suffix(".tmp")
        _write_file(temporary, records)
        os.replace(temporary, self.path)
        _sync_dir(self.directory)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._file_bytes = sum(len(r) for r in records)

    async def close(self) -> None:
        """Let running writes finish, write what is buffered, fsync, settle every waiter, release.

        A flush's end can set off one more (a confirm it sent unblocks a publish, whose record
        starts a new flush before this resumes), so this waits until none runs: the file is never
        closed under a write. What is left is written here, and the publishes waiting on it hear
        back (confirmed after the fsync, else nacked) instead of waiting forever.
        """
        while True:
            if self._retry is not None:  # a failed write is not retried at shutdown: written below
                self._retry.cancel()
                self._retry = None
            task = self._task
            if task is None:
                break
            with contextlib.suppress(Exception):
                # Shielded: cancelling close must not cancel a flush whose write runs in a thread.
                await asyncio.shield(task)
            if self._task is task:  # cancelled before it ran: nothing else clears it before we look
                self._task = None
        if self._fd >= 0:
            mark = self._appended
            try:
                if self._truncate_to is not None:
                    os.ftruncate(self._fd, self._truncate_to)
                _write_and_sync(self._fd, bytes(self._buffer), None)
                self._buffer.clear()
                self._synced = mark
            except OSError as exc:
                # Nothing of it was confirmed: publishers were nacked or never heard back.
                log.error(
                    "store: %d bytes of records could not be written at shutdown: %s", len(self._buffer), exc
                )
                self._failed_mark = mark
            os.close(self._fd)
            self._fd = -1
        while self._waiters:
            self._waiters.popleft()[1]()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # --- topology ---------------------------------------------------------------------------

    @staticmethod
    def topology_record(kind: int, entry: dict[str, Any]) -> bytes:
        """One topology record (a table without its length prefix)."""
        return _record(kind, encode_table(entry)[4:])

    def log_topology(self, kind: int, entry: dict[str, Any]) -> None:
        """Append a durable topology change."""
        self._append(self.topology_record(kind, entry))

    # --- messages ---------------------------------------------------------------------------

    def add_message(self, queue: str, address: bytes, props: bytes, body: bytes, expires_wall: float) -> int:
        """Append a persistent message in a durable queue; returns its store id. ``address`` is its
        exchange and routing key encoded as short strings, as :meth:`Message.wire_address` caches them
        for Basic.Deliver (the record reuses them instead of encoding them again)."""
        store_id = self._next_id
        self._next_id += 1
        record = _record(MESSAGE, _encode_message(store_id, queue, address, props, body, expires_wall))
        self._live[store_id] = record
        self._live_bytes += len(record)
        self._append(record)
        return store_id

    def remove(self, store_ids: Iterable[int]) -> None:
        """Append the removal of messages (acked, dropped, expired, dead-lettered)."""
        gone = []
        for store_id in store_ids:
            record = self._live.pop(store_id, None)
            if record is not None:
                self._live_bytes -= len(record)
                gone.append(store_id)
        if gone:
            # A lost removal only means a redelivery after a power cut (RabbitMQ, too, fsyncs acks
            # lazily, once the queue is idle): written at once (a kill -9 keeps it), fsync'd with the
            # next record that needs it or when someone waits for it (tx.commit of acks). An fsync
            # per ack batch kept the disk busy, so the publishes after it waited for two fsyncs.
            self._append(_record(REMOVE, b"".join(_ID.pack(i) for i in gone)), durable=False)

    @property
    def appended(self) -> int:
        """A mark for everything appended so far; pass it to :meth:`when_synced`."""
        return self._appended

    @property
    def synced(self) -> int:
        """The mark of the last fsync'd append."""
        return self._synced

    @property
    def failed_mark(self) -> int:
        """Publishes waiting on a mark up to this one, and not yet synced, were in a failed write:
        they are nacked (their records stay buffered and are retried)."""
        return self._failed_mark

    @property
    def file_bytes(self) -> int:
        """The size of the log on disk."""
        return self._file_bytes

    @property
    def live_bytes(self) -> int:
        """The size of the persistent messages that are live (what a compaction writes, with topology)."""
        return self._live_bytes

    def when_synced(self, mark: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once everything up to ``mark`` is fsync'd, or once a write covering
        it failed (then ``mark <= failed_mark``)."""
        if mark <= self._synced:
            callback()
            return
        self._waiters.append((mark, callback))
        self._kick()

    def _append(self, record: bytes, durable: bool = True) -> None:
        self._buffer += record
        self._appended += 1
        if durable:
            self._durable_mark = self._appended
        self._kick()

    def _sync_due(self) -> bool:
        return self._durable_mark > self._synced or bool(self._waiters and self._waiters[0][0] > self._synced)

    def _kick(self) -> None:
        if self._task is None and self._retry is None and self._fd >= 0:
            self._task = asyncio.get_running_loop().create_task(self._flush())
            self._task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        if self._task is task:  # cancelled before it ran (it clears itself when it ends)
            self._task = None
        if not task.cancelled() and task.exception() is not None:
            log.error("store: the write task failed", exc_info=task.exception())

    async def _flush(self) -> None:
        try:
            await self._flush_all()
        finally:
            # Cleared here, in the same step as the loop's last look at the buffer, not in a done
            # callback: callbacks queued before that one (a connection unblocked by this very
            # write, reading the publishes it held) would append records and find a flush still
            # "running", and nothing would write them.
            self._task = None

    async def _flush_all(self) -> None:
        # Let every connection's frames of this loop turn land in the buffer first: one fsync for all.
        await asyncio.sleep(0)
        while self._fd >= 0 and (self._buffer or self._sync_due()):
            mark = self._appended
            sync = self._sync_due()
            try:
                if self._truncate_to is not None:
                    os.ftruncate(self._fd, self._truncate_to)
                    self._truncate_to = None
                if self._should_compact():
                    await self._compact()
                    sync = True
                else:
                    await self._write_buffer(sync)
            except OSError as error:
                self._write_failed(error, mark)
                return
            if self.error is not None:
                log.info("store: writing works again")
                self.error = None
                self._retry_delay = RETRY_FIRST
            if sync:
                self._synced = mark
                while self._waiters and self._waiters[0][0] <= mark:
                    self._waiters.popleft()[1]()
            self.on_health(None)

    async def _write_buffer(self, sync: bool) -> None:
        data = bytes(self._buffer)
        fault = self.faults.next_write()
        if sync:
            await asyncio.get_running_loop().run_in_executor(None, _write_and_sync, self._fd, data, fault)
        else:
            # Removals alone go to the page cache (a kill -9 keeps them) at once: no fsync, no thread.
            _write_and_sync(self._fd, data, fault, sync=False)
        # Only now does it leave the buffer: records appended during the write stay after it.
        del self._buffer[: len(data)]
        self._file_bytes += len(data)
        self.bytes_written += len(data)

    def _write_failed(self, error: OSError, mark: int) -> None:
        if self.error is None or self.error.errno != error.errno:
            log.error("store: writing the log failed (%s); nacking the publishes it held, retrying", error)
        self.error = error
        # A write may have gone in part: cut the file back before anything else is appended.
        self._truncate_to = self._file_bytes
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._file_bytes)
            self._truncate_to = None
        self._failed_mark = mark
        while self._waiters and self._waiters[0][0] <= mark:
            self._waiters.popleft()[1]()
        self.on_health(error)
        self._retry = asyncio.get_running_loop().call_later(self._retry_delay, self._retry_now)
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX)

    def _retry_now(self) -> None:
        self._retry = None
        if self._buffer or self._waiters:
            self._kick()

    def _should_compact(self) -> bool:
        if self._file_bytes > 2 * self._live_bytes + self.compact_slack:
            return True
        if not self.low_on_disk or self._file_bytes < 2 * self._live_bytes + RECLAIM_MIN:
            return False
        # Short of disk: compact as soon as the snapshot fits in the free space, to give room back.
        return free_bytes(self.directory) > self._live_bytes + RECLAIM_MIN

    def _snapshot(self) -> list[bytes]:
        return [*self._topology(), *self._live.values()]

    async def _compact(self) -> None:
        started = time.monotonic()
        records = self._snapshot()
        covered = len(self._buffer)  # the snapshot holds everything buffered so far
        temporary = self.path.with_suffix(".tmp")
        fault = self.faults.next_compaction()
        try:
            await asyncio.get_running_loop().run_in_executor(None, _write_file, temporary, records)
            if fault is not None:
                raise fault.error()
            # Opened before the rename: once the new log has the name, nothing can fail before the
            # switch, so no write ever goes to the old (unlinked) file.
            fd = os.open(temporary, os.O_WRONLY | os.O_APPEND)
            try:
                os.replace(temporary, self.path)
            except OSError:
                os.close(fd)
                raise
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        os.close(self._fd)
        self._fd = fd
        _sync_dir(self.directory)
        del self._buffer[:covered]  # records appended while the snapshot was written follow it
        self._file_bytes = sum(len(r) for r in records)
        self.bytes_written += self._file_bytes
        log.info("store: compacted to %d bytes in %.2f s", self._file_bytes, time.monotonic() - started)


def free_bytes(directory: Path) -> int:
    """Bytes free for an unprivileged writer on the filesystem of ``directory``."""
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def _write_and_sync(fd: int, data: bytes, fault: WriteFault | None, sync: bool = True) -> None:
    view = memoryview(data)
    if fault is not None and fault.stage == "write":
        os.write(fd, view[: len(view) // 2])
        raise fault.error()
    while view:
        written = os.write(fd, view)
        view = view[written:]
    if fault is not None:
        raise fault.error()
    if sync:
        os.fsync(fd)


def _write_file(path: Path, records: list[bytes]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as out:
        for record in records:
            out.write(record)
        out.flush()
        os.fsync(out.fileno())


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)
