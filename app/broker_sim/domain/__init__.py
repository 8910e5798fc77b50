"""Plain data of broker-sim: scenarios, flow events, validation. No I/O, no UI, no broker."""
