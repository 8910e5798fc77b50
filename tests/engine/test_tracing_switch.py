"""Turning tracing on through the management API, and off again only if broker-sim turned it on.

On a private RabbitMQ node with the management plugin (the machine's shared node has none).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from broker_sim.broker.local_node import LocalNode
from broker_sim.broker.tracing import TraceSwitch


def tracing(node: LocalNode) -> bool:
    return "true" in node.ctl("list_vhosts", "name", "tracing").split()


async def test_the_management_api_switch_turns_tracing_on_and_restores_only_its_own(
    managed_node: LocalNode,
) -> None:
    switch = TraceSwitch(managed_node.url, management_port=managed_node.management_port or 0)
    how = await switch.turn_on()
    assert how == "broker-sim turned tracing on (management API)"
    assert await asyncio.to_thread(tracing, managed_node)
    await switch.restore()
    assert not await asyncio.to_thread(tracing, managed_node)

    await asyncio.to_thread(managed_node.ctl, "trace_on")
    someone_elses = TraceSwitch(managed_node.url, management_port=managed_node.management_port or 0)
    assert await someone_elses.turn_on() == "tracing was already on (management API)"
    await someone_elses.restore()
    assert await asyncio.to_thread(tracing, managed_node)  # not ours to turn off


async def test_without_any_way_in_the_switch_says_what_it_tried(tmp_path: Path) -> None:
    # Loopback only, a closed port for the API, and a vhost no node has, so rabbitmqctl finds nothing.
    switch = TraceSwitch("amqp://u:p@127.0.0.1:1/no-such-vhost", management_port=1)
    assert await switch.turn_on() is None
    assert "management API: not reachable" in switch.how
    assert "rabbitmqctl" in switch.how
    assert not switch.turned_on
