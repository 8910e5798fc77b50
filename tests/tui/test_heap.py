"""The collector's settings for a steady frame rate (tui/heap.py)."""

from __future__ import annotations

import gc

from broker_sim.tui.heap import YOUNG_THRESHOLD, freeze_loaded, tune_collector


def test_what_is_loaded_is_frozen_once() -> None:
    freeze_loaded()
    frozen = gc.get_freeze_count()
    assert frozen > 0, "the objects alive now are out of the collector's sight"
    made_since = [[n] for n in range(1000)]  # containers the collector tracks
    freeze_loaded()
    assert gc.get_freeze_count() == frozen, "a second call freezes nothing more"
    assert len(made_since) == 1000


def test_the_youngest_generation_is_collected_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
    finally:
        gc.set_threshold(*before)
