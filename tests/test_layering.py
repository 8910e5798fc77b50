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


def test_no_import_by_string() -> None:
    """The contracts above see only ``import`` statements: an import by string would slip past them."""
    import ast
    from pathlib import Path

    import broker_sim

    found = []
    for path in sorted(Path(broker_sim.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            # any mention, not only a call: ``asyncio.to_thread(importlib.import_module, "…")``
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.alias):
                name = node.name
            else:
                continue
            if name in ("import_module", "__import__"):
                found.append(f"{path.name}:{getattr(node, 'lineno', '?')}")
    assert not found, f"imports by string, unseen by lint-imports: {found}"
