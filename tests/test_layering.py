"""One direction of knowledge: the engine knows no UI, the UI never touches the broker."""

from __future__ import annotations

import subprocess
import sys


def test_import_contracts_hold() -> None:
    done = subprocess.run(["lint-imports"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_engine_imports_without_textual() -> None:
    code = "import sys, broker_sim.sim, broker_sim.headless; assert 'textual' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
