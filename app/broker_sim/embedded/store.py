"""Persistence: an append-only log of durable topology and persistent messages, fsync'd in batches.

Each record is ``length, crc32, type`` then its payload. A confirm for a persistent message waits
until the fsync that covers its record (see :meth:`Store.when_synced`). On start the log is replayed
(a torn tail from a crash is dropped) and rewritten with only what is live (compaction); the log
is compacted again whenever it grows well past what is live.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker_sim.embedded.codec import decode_table, encode_table, read_shortstr, shortstr

log = logging.getLogger(__name__)

LOG_NAME = "store.log"
LOCK_NAME = "lock"
_RECORD = struct.Struct(">IIB")
_MESSAGE = struct.Struct(">Qd")
_ID = struct.Struct(">Q")
_LEN = struct.Struct(">I")

EXCHANGE, EXCHANGE_DELETE, QUEUE, QUEUE_DELETE, BIND, UNBIND, MESSAGE, REMOVE = range(1, 9)
COMPACT_SLACK = 64 * 1024 * 1024
"""Compact when the log holds this much more than what is live (and more than twice the live size)."""


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


def _record(kind: int, payload: bytes) -> bytes:
    return _RECORD.pack(len(payload), zlib.crc32(payload, kind), kind) + payload


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
    """Replay a log; returns the state and the highest message id seen."""
    state = Recovered()
    top = 0
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return state, 0
    offset = 0
    while offset + _RECORD.size <= len(data):
        size, crc, kind = _RECORD.unpack_from(data, offset)
        start = offset + _RECORD.size
        payload = data[start : start + size]
        if len(payload) < size or zlib.crc32(payload, kind) != crc:
            log.warning("store: dropping a torn record at byte %d of %s", offset, path)
            break
        offset = start + size
        if kind == MESSAGE:
            stored = _decode_message(payload)
            state.messages[stored.store_id] = stored
            top = max(top, stored.store_id)
        elif kind == REMOVE:
            for (store_id,) in _ID.iter_unpack(payload):
                state.messages.pop(store_id, None)
        else:
            entry = decode_table(_LEN.pack(len(payload)) + payload)
            _apply(state, kind, entry)
    return state, top


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
    store_id: int, queue: str, exchange: str, routing_key: str, props: bytes, body: bytes, expires_wall: float
) -> bytes:
    return (
        _MESSAGE.pack(store_id, expires_wall)
        + shortstr(queue)
        + shortstr(exchange)
        + shortstr(routing_key)
        + _LEN.pack(len(props))
        + props
        + body
    )


def _decode_message(payload: bytes) -> StoredMessage:
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
    """The append-only log of one data dir. Writes are buffered; one task writes and fsyncs them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOG_NAME
        self._lock_fd = -1
        self._fd = -1
        self._buffer = bytearray()
        self._appended = 0
        self._synced = 0
        self._waiters: deque[tuple[int, Callable[[], None]]] = deque()
        self._flushing = False
        self._next_id = 1
        self._live: dict[int, bytes] = {}  # store id -> its record, for compaction
        self._live_bytes = 0
        self._file_bytes = 0
        self._topology: Callable[[], Iterable[bytes]] = list

    def open(self, topology: Callable[[], Iterable[bytes]]) -> Recovered:
        """Lock the data dir, replay the log, and start a compacted one. ``topology`` gives the live
        topology records whenever the log is compacted."""
        self.directory.mkdir(parents=True, exist_ok=True)
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
        self._next_id = top + 1
        self._topology = topology
        for stored in state.messages.values():
            record = _record(
                MESSAGE,
                _encode_message(
                    stored.store_id,
                    stored.queue,
                    stored.exchange,
                    stored.routing_key,
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
        self._rewrite()

    def close(self) -> None:
        """Write what is buffered, fsync, release the data dir."""
        if self._fd >= 0:
            if self._buffer:
                os.write(self._fd, self._buffer)
                self._buffer.clear()
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
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

    def add_message(
        self, queue: str, exchange: str, routing_key: str, props: bytes, body: bytes, expires_wall: float
    ) -> int:
        """Append a persistent message in a durable queue; returns its store id."""
        store_id = self._next_id
        self._next_id += 1
        record = _record(
            MESSAGE, _encode_message(store_id, queue, exchange, routing_key, props, body, expires_wall)
        )
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
            self._append(_record(REMOVE, b"".join(_ID.pack(i) for i in gone)))

    @property
    def appended(self) -> int:
        """A mark for everything appended so far; pass it to :meth:`when_synced`."""
        return self._appended

    @property
    def synced(self) -> int:
        """The mark of the last fsync'd append."""
        return self._synced

    def when_synced(self, mark: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once everything up to ``mark`` is fsync'd."""
        if mark <= self._synced:
            callback()
            return
        self._waiters.append((mark, callback))
        self._kick()

    def _append(self, record: bytes) -> None:
        self._buffer += record
        self._appended += 1
        self._kick()

    def _kick(self) -> None:
        if not self._flushing and self._fd >= 0:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            # Let every connection's frames of this loop turn land in the buffer first: one fsync for all.
            await asyncio.sleep(0)
            while self._buffer or (self._waiters and self._waiters[0][0] > self._synced):
                mark = self._appended
                if self._file_bytes > 2 * self._live_bytes + COMPACT_SLACK:
                    await self._compact()
                else:
                    data = bytes(self._buffer)
                    self._buffer.clear()
                    await loop.run_in_executor(None, _write_and_sync, self._fd, data)
                    self._file_bytes += len(data)
                self._synced = mark
                while self._waiters and self._waiters[0][0] <= mark:
                    self._waiters.popleft()[1]()
        except Exception:
            log.exception("store: writing the log failed")
            raise
        finally:
            self._flushing = False

    def _snapshot(self) -> list[bytes]:
        return [*self._topology(), *self._live.values()]

    def _rewrite(self) -> None:
        records = self._snapshot()
        self._buffer.clear()
        temporary = self.path.with_suffix(".tmp")
        _write_file(temporary, records)
        os.replace(temporary, self.path)
        _sync_dir(self.directory)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._file_bytes = sum(len(r) for r in records)

    async def _compact(self) -> None:
        started = time.monotonic()
        records = self._snapshot()
        self._buffer.clear()  # the snapshot already holds everything buffered
        temporary = self.path.with_suffix(".tmp")
        await asyncio.get_running_loop().run_in_executor(None, _write_file, temporary, records)
        os.replace(temporary, self.path)
        _sync_dir(self.directory)
        # Records appended while the snapshot was written are still in the buffer: they follow.
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._file_bytes = sum(len(r) for r in records)
        log.info("store: compacted to %d bytes in %.2f s", self._file_bytes, time.monotonic() - started)


def _write_and_sync(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def _write_file(path: Path, records: list[bytes]) -> None:
    with open(path, "wb") as out:
        for record in records:
            out.write(record)
        out.flush()
        os.fsync(out.fileno())


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)
