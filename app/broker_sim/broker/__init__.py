"""Reaching a broker: finding it, switching its tracing, (later) starting and restarting it."""
