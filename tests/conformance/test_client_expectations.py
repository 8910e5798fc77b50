"""RabbitMQ details that client libraries' own tests rely on: where requeued messages go, unbinds of
what is not there, and the close handshake. Each test runs on both brokers."""

from __future__ import annotations

import select
import socket

import aio_pika
from aiormq import spec
from pamqp import commands, heartbeat

from tests.conformance.clients import channel
from tests.conformance.conftest import BrokerUnderTest
from tests.conformance.raw import RawClient

HANG_UP_WINDOW = 1.0
"""How long the close test watches for a broker that hangs up after Close-Ok (it hangs up at once)."""


async def test_nacked_messages_go_back_to_their_places(broker: BrokerUnderTest, name: str) -> None:
    """Nack (requeue) 5, 3, 2, 4 one at a time: they come back 2, 3, 4, 5, and before 6."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, auto_delete=False)
        try:
            for i in range(1, 7):
                await ch.default_exchange.publish(aio_pika.Message(b"%d" % i), routing_key=name)
            held = {}
            for _ in range(5):
                message = await queue.get(no_ack=False)
                assert message is not None
                held[message.body] = message
            await held[b"1"].ack()
            for key in (b"5", b"3", b"2", b"4"):
                await held[key].nack(requeue=True)
            again = []
            for _ in range(5):
                message = await queue.get(no_ack=True)
                assert message is not None
                again.append((message.body, message.redelivered))
            assert again == [(b"2", True), (b"3", True), (b"4", True), (b"5", True), (b"6", False)]
        finally:
            await queue.delete()


async def test_unbinding_what_is_not_there_is_ok(broker: BrokerUnderTest, name: str) -> None:
    """queue.unbind of a queue that no longer exists, or from an exchange that does not exist, and
    exchange.unbind of exchanges that do not exist all answer Unbind-Ok; the channel stays open."""
    async with channel(broker.url) as ch:
        raw = await ch.get_underlay_channel()
        queue = await ch.declare_queue(name, exclusive=True)
        await queue.bind("amq.direct", routing_key="k")
        await queue.delete()
        reply = await raw.queue_unbind(name, "amq.direct", "k")
        assert isinstance(reply, spec.Queue.UnbindOk)
        await ch.declare_queue(f"{name}-kept", exclusive=True)
        reply = await raw.queue_unbind(f"{name}-kept", f"{name}-no-such-exchange", "k")
        assert isinstance(reply, spec.Queue.UnbindOk)
        unbound = await raw.exchange_unbind(f"{name}-no-destination", f"{name}-no-source", "k")
        assert isinstance(unbound, spec.Exchange.UnbindOk)
        assert (await ch.declare_queue(f"{name}-kept", passive=True)).name == f"{name}-kept"


def test_after_close_ok_the_broker_waits_for_the_client_to_close(broker: BrokerUnderTest) -> None:
    """After Close-Ok the broker leaves the socket to the client: frames the client still flushes are
    ignored (no reset, no broken pipe), and the broker hangs up once the client closed its side."""
    client = RawClient(broker)
    try:
        client.handshake()
        client.send(0, commands.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
        assert isinstance(client.read_frame(), commands.Connection.CloseOk)
        # A broker that hangs up after Close-Ok makes the socket readable (end of file) at once. This
        # waits for that, with a deadline: a correct broker can never fail it, however slow the machine.
        readable, _, _ = select.select([client.sock], [], [], HANG_UP_WINDOW)
        assert not readable, "the broker closed the socket after Close-Ok instead of waiting for the client"
        for _ in range(20):  # a hung-up broker answers these with a reset: the next send fails
            client.sock.sendall(heartbeat.Heartbeat().marshal())
        client.sock.shutdown(socket.SHUT_WR)
        try:
            end = client.sock.recv(1)
        except ConnectionResetError:  # RabbitMQ resets the socket once the client closed its side
            end = b""
        assert end == b""
    finally:
        client.close()
