"""An embedded AMQP 0-9-1 broker: a RabbitMQ-compatible subset, so broker-sim runs with nothing installed.

Run it alone with ``broker-sim broker``; start it as a child process with
:class:`broker_sim.embedded.launch.EmbeddedBroker`. See docs/embedded.md.
"""
