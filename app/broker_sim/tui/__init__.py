"""The Textual app: one tab per scenario, the flow diagram, counters, controls.

Nothing here imports aio_pika: the engine is imported lazily inside workers, so the first frame
never waits for it, and widgets only ever see flow events.
"""
