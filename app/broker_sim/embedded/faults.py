"""Fault injection for the fault suite: the broker process reads ``BROKER_SIM_EMBEDDED_FAULTS``.

Only tests set it. The faults act inside the store's real write path (a short write followed by an
``OSError``, or an ``fsync`` that fails), so the recovery code that runs is the code a real disk
error runs. The value is a comma-separated list:

- ``write@N=ERRNO``: the N-th log write (1-based, one per flush batch) writes half its bytes, then
  fails with ``ERRNO`` (a name such as ``ENOSPC`` or ``EIO``);
- ``fsync@N=ERRNO``: the N-th log write writes everything, then its ``fsync`` fails;
- ``compact@N=ERRNO``: the N-th compaction writes its snapshot, then fails before the rename;
- ``compact-slack=BYTES``: compact whenever the log holds this much more than twice what is live
  (instead of 64 MiB), so that compaction runs while publishers run.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

FAULTS_ENV = "BROKER_SIM_EMBEDDED_FAULTS"


class FaultSpecError(ValueError):
    """A fault specification that cannot be read."""


@dataclass(frozen=True)
class WriteFault:
    """What goes wrong with one log write."""

    stage: str  # "write" (half written, then the error) or "fsync"
    errno: int

    def error(self) -> OSError:
        """The error to raise."""
        return OSError(self.errno, f"{os.strerror(self.errno)} (injected)")


@dataclass
class Faults:
    """The faults one broker process injects."""

    writes: dict[int, WriteFault] = field(default_factory=dict)
    compactions: dict[int, WriteFault] = field(default_factory=dict)
    compact_slack: int | None = None
    _writes: int = 0
    _compactions: int = 0

    def next_write(self) -> WriteFault | None:
        """Count one log write; the fault it suffers, if any."""
        self._writes += 1
        return self.writes.get(self._writes)

    def next_compaction(self) -> WriteFault | None:
        """Count one compaction; the fault it suffers, if any."""
        self._compactions += 1
        return self.compactions.get(self._compactions)


def parse_faults(spec: str) -> Faults:
    """Read a fault specification (see the module docstring)."""
    faults = Faults()
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, _, value = item.partition("=")
        if key == "compact-slack":
            if not value.isdigit():
                raise FaultSpecError(f"{FAULTS_ENV}: compact-slack wants a byte count, got {value!r}")
            faults.compact_slack = int(value)
            continue
        stage, _, count = key.partition("@")
        number = getattr(errno, value, None)
        if stage not in ("write", "fsync", "compact") or not count.isdigit() or not isinstance(number, int):
            raise FaultSpecError(
                f"{FAULTS_ENV}: cannot read {item!r} (expected write@N=ERRNO, fsync@N=ERRNO, "
                "compact@N=ERRNO or compact-slack=BYTES)"
            )
        into = faults.compactions if stage == "compact" else faults.writes
        into[int(count)] = WriteFault(stage, number)
    return faults


def faults_from_env() -> Faults | None:
    """The faults the environment asks for, or None (the normal case)."""
    spec = os.environ.get(FAULTS_ENV, "")
    return parse_faults(spec) if spec else None
