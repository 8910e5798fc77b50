"""The garbage collector, set for a steady frame rate.

Measured on these machines (``benchmarks/tui_frames.py``, 1,000 msg/s, 100 consumers): the
worst frame intervals (110–135 ms) were each a full (generation 2) collection. A full collection
walks every object the process keeps: ~130,000 once Textual, aio-pika, igraph and the widgets are
loaded, ~100 ms on a 2-core VM. Those objects live as long as the app, so the collector is told
to leave them alone (:func:`gc.freeze`), and the youngest generation is collected ten times less
often, which lets most of a frame's short-lived objects (strips, segments, events) die before
they are promoted and count towards the next full collection.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 7000
"""Allocations between two collections of the youngest generation (Python's default is 700)."""

_frozen = False


def tune_collector() -> None:
    """Collect the youngest generation less often (the other thresholds stay Python's)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def freeze_loaded() -> None:
    """Move every object alive now out of the collector's sight, once per process.

    Called when the modules and widgets that live as long as the app are loaded. Once: a second
    freeze would also keep whatever garbage the app made since (a test run starts many apps in
    one process)."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()
