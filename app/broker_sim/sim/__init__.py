"""The engine: runs a scenario's producers and consumers on a real broker and emits flow events.

No Textual here: the TUI, the headless reporter and tests all subscribe to the same events.
"""

from broker_sim.sim.bus import EventBus
from broker_sim.sim.engine import Engine, EngineError

__all__ = ["Engine", "EngineError", "EventBus"]
