"""The engine side, imported off the event loop: aio_pika alone takes ~0.3 s to import.

Call a loader in a thread (``await asyncio.to_thread(load_engine)``) before the first use; the
plain ``from … import …`` that follows is then instant, typed, and seen by the layering check
(an import by string is neither).
"""

from __future__ import annotations

import threading

_one_at_a_time = threading.Lock()
"""Every tab loads the engine at start, each in a thread: one loads, the others then find it
loaded. Threads importing the same modules in different orders can trip Python's import
deadlock detection, which fails one of the imports."""


def load_engine() -> None:
    """Import the engine, the broker finder, the lab runner and the story's end (idempotent)."""
    with _one_at_a_time:
        import broker_sim.broker.resolve
        import broker_sim.sim
        import broker_sim.sim.lab_runner
        import broker_sim.sim.player
        import broker_sim.sim.settle  # noqa: F401


def load_vhost_admin() -> None:
    """Import the vhost administration and the tracing policy (the ``V`` offer's broker work)."""
    with _one_at_a_time:
        import broker_sim.broker.tracing
        import broker_sim.broker.vhost  # noqa: F401


def load_uploads() -> None:
    """Import the uploads server (aiohttp): only needed with ``--api-port``."""
    with _one_at_a_time:
        import broker_sim.sim.uploads  # noqa: F401


def load_help() -> None:
    """Import the help screen (its markdown rendering is slow to import)."""
    import broker_sim.tui.help  # noqa: F401
