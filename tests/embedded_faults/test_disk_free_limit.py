"""``broker-sim broker --disk-free-limit`` has a floor: the room the append-only store needs to
compact while consumers drain. Below it the command refuses to start, with one line that names the
minimum and the fix; at it the broker runs with that limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from broker_sim.embedded.store import DISK_RESERVE_MIN

BROKER = (sys.executable, "-m", "broker_sim", "broker", "--port", "0")
"""``broker-sim broker``, through its real entry point."""


@pytest.mark.parametrize("limit", ["0", "100kB", str(DISK_RESERVE_MIN - 1)])
def test_a_limit_below_the_store_s_reserve_is_refused_in_one_line(tmp_path: Path, limit: str) -> None:
    data_dir = tmp_path / "data"
    done = subprocess.run(
        [*BROKER, "--data-dir", str(data_dir), "--disk-free-limit", limit],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("broker-sim broker: --disk-free-limit ")
    assert "minimum of 1MiB" in lines[0] and "give --disk-free-limit 1MiB or more" in lines[0]
    assert done.stdout == ""
    assert not data_dir.exists(), "refused before it touched the data dir"


def test_the_minimum_itself_is_accepted(tmp_path: Path) -> None:
    """The broker starts with it and says the limit it runs with (its stdout, line by line)."""
    broker = subprocess.Popen(
        [
            *BROKER,
            "--data-dir",
            str(tmp_path / "data"),
            "--password",
            "limit-secret",
            "--disk-free-limit",
            "1MiB",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert broker.stdout is not None
        limits = next((line for line in broker.stdout if line.startswith("limits: ")), "")
    finally:
        broker.terminate()
        broker.wait(timeout=60)
    assert f"publishers are blocked below {DISK_RESERVE_MIN:,} bytes of free disk" in limits
