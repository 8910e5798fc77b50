"""Resource alarms, as RabbitMQ raises them: free disk below a limit, memory above a limit.

While an alarm is on, every connection that publishes is blocked: it gets ``connection.blocked``
("low on disk", "low on memory") when it publishes, and the broker stops reading from it (its
consumers stall too, as on RabbitMQ: publish and consume on separate connections). Heartbeats still
go out and a blocked peer is never timed out. When the alarm clears the connections get
``connection.unblocked`` and are read again.

Disk: checked every second (RabbitMQ checks on a timer too), after a write of the store that failed
(ENOSPC raises it at once), and once the store's own writes could have used half the room that was
above the limit at the last check: near the limit (or with the alarm on) after every write, far from
it seldom, instead of one ``statvfs`` per write. The limit is also the store's reserve: while it is on, the
store compacts as soon as what is live fits in the free space, so consumers draining the queues give
room back and the alarm clears by itself. Memory: the broker process's resident set, every second
and after every 4 MiB clients sent; it clears once memory is 5 % (at least 8 MiB) below the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
from collections.abc import Callable

from broker_sim.embedded.store import DISK_RESERVE_MIN, Store, free_bytes

log = logging.getLogger(__name__)

DISK, MEMORY = "disk", "memory"
CHECK_INTERVAL = 1.0
CHECK_EVERY_BYTES = 4 * 1024 * 1024
"""Memory is also checked whenever clients sent this much since the last check: a fast publisher
would otherwise overshoot the limit by a second's worth of messages."""
DEFAULT_DISK_FREE_LIMIT = "50MB"
DEFAULT_MEMORY_LIMIT = "0.4"
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "K": 1024,
    "KIB": 1024,
    "M": 1024**2,
    "MIB": 1024**2,
    "G": 1024**3,
    "GIB": 1024**3,
}


def parse_size(text: str) -> int:
    """Bytes from ``50MB`` (SI: 1000²), ``64MiB`` or ``64M`` (1024²), ``1GB``, or a plain number."""
    stripped = text.strip()
    digits = stripped.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ")
    unit = stripped[len(digits) :].strip().upper()
    if not digits or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (examples: 50MB, 2GiB, 1000000)")
    try:
        value = float(digits)
    except ValueError:
        raise ValueError(f"{text!r} is not a size (examples: 50MB, 2GiB, 1000000)") from None
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return int(value * _UNITS[unit])


def check_disk_free_limit(limit: int) -> None:
    """Refuse a free-disk limit below :data:`~broker_sim.embedded.store.DISK_RESERVE_MIN` (a
    ``ValueError`` with one line that says the minimum and how to fix it). RabbitMQ takes any value,
    but its store needs no room to give room back; ours, append-only, does: with less, a small
    filesystem that fills up would keep the alarm on forever."""
    if limit < DISK_RESERVE_MIN:
        raise ValueError(
            f"--disk-free-limit {limit:,} bytes is below the minimum of 1MiB ({DISK_RESERVE_MIN:,} "
            "bytes): the store needs that much free space to compact while consumers drain, or the "
            f"disk alarm could never clear; give --disk-free-limit 1MiB or more (default "
            f"{DEFAULT_DISK_FREE_LIMIT})"
        )


def total_memory() -> int:
    """This machine's RAM in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def parse_memory_limit(text: str) -> int:
    """A memory limit: a fraction of the machine's RAM (``0.4``, RabbitMQ's default watermark) or a
    size (``512MB``)."""
    try:
        fraction = float(text)
    except ValueError:
        return parse_size(text)
    if 0 < fraction < 1:
        return int(fraction * total_memory())
    if fraction >= 1:
        return int(fraction)
    raise ValueError(f"{text!r}: give a fraction of RAM between 0 and 1 (like 0.4) or a size (like 512MB)")


def resident_bytes() -> int | None:
    """The resident set of this process (None where ``/proc`` cannot tell)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _give_memory_back() -> None:
    # Python's allocator keeps freed heap pages; glibc's malloc_trim hands them to the OS, so the
    # resident set can fall below the limit again once the queues are drained.
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


class ResourceMonitor:
    """Raises and clears the disk and memory alarms; ``on_change`` gets the set of alarms that are on."""

    def __init__(
        self,
        store: Store | None,
        disk_free_limit: int,
        memory_limit: int,
        on_change: Callable[[frozenset[str]], None],
    ) -> None:
        if store is not None:
            check_disk_free_limit(disk_free_limit)
        self.store = store
        self.disk_free_limit = disk_free_limit
        self.memory_limit = memory_limit
        self.alarms: frozenset[str] = frozenset()
        self._on_change = on_change
        self._timer: asyncio.TimerHandle | None = None
        self._received = 0
        self._written_at_check = 0
        self._headroom = 0  # free bytes above the limit at the last disk check
        if store is not None:
            store.on_health = self._store_wrote

    def start(self) -> None:
        """Check now and every second from now on."""
        self.check()

    def stop(self) -> None:
        """Stop checking."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def check(self) -> None:
        """Check disk and memory now."""
        self._check_disk()
        self._check_memory()
        self._timer = asyncio.get_running_loop().call_later(CHECK_INTERVAL, self.check)

    def received(self, count: int) -> None:
        """Clients sent ``count`` bytes (called once per read: keep it cheap)."""
        self._received += count
        if self._received > CHECK_EVERY_BYTES:
            self._check_memory()

    def _store_wrote(self, error: OSError | None) -> None:
        store = self.store
        assert store is not None
        # With the alarm on, after every write: it clears as soon as writes work again or a compaction
        # gave room back.
        used = store.bytes_written - self._written_at_check
        if DISK in self.alarms or error is not None or 2 * used >= self._headroom:
            self._check_disk()

    def _check_disk(self) -> None:
        store = self.store
        if store is None:
            return
        try:
            free = free_bytes(store.directory)
        except OSError:
            return
        self._written_at_check = store.bytes_written
        self._headroom = free - self.disk_free_limit
        full = store.error is not None and store.error.errno in _FULL
        low = full or free < self.disk_free_limit
        store.low_on_disk = low
        if low != (DISK in self.alarms):
            if low:
                log.warning(
                    "disk alarm set: %d bytes free, limit %d%s; blocking publishers",
                    free,
                    self.disk_free_limit,
                    " (a write failed: disk full)" if full else "",
                )
            else:
                log.warning("disk alarm cleared: %d bytes free, limit %d", free, self.disk_free_limit)
            self._set(DISK, low)

    def _check_memory(self) -> None:
        self._received = 0
        used = resident_bytes()
        if used is None:
            return
        on = MEMORY in self.alarms
        limit = self.memory_limit
        # Clear only well below the limit, or freeing the read buffers of the blocked publishers
        # alone would clear it and the alarm would flap.
        clear_below = limit - max(limit // 20, 8 * 1024 * 1024)
        threshold = clear_below if on else limit
        if used > threshold:
            _give_memory_back()  # count only what is held, not freed pages the allocator kept
            used = resident_bytes() or used
        high = used > threshold
        if high != on:
            if high:
                log.warning(
                    "memory alarm set: %d bytes resident, limit %d; blocking publishers",
                    used,
                    self.memory_limit,
                )
            else:
                log.warning("memory alarm cleared: %d bytes resident, limit %d", used, self.memory_limit)
            self._set(MEMORY, high)

    def _set(self, kind: str, on: bool) -> None:
        self.alarms = self.alarms | {kind} if on else self.alarms - {kind}
        self._on_change(self.alarms)


def blocked_reason(alarms: frozenset[str]) -> str:
    """The reason RabbitMQ gives in ``connection.blocked``: "low on disk", "low on memory & disk"."""
    return "low on " + " & ".join(sorted(alarms, key=(MEMORY, DISK).index))
