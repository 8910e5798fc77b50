"""broker-sim: see how RabbitMQ moves messages, live, in the terminal."""

__version__ = "0.1.0"
