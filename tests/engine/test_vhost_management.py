"""The vhost of broker-sim's own through the management API (the way a compose broker offers).

On a private RabbitMQ node with the management plugin: the machine's shared node has none.
Its default user is an administrator; the test adds a user with the ``management`` tag only.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from broker_sim.broker.local_node import LocalNode
from broker_sim.broker.vhost import VhostAdmin, VhostError
from broker_sim.domain.urls import build_url

OWN = "broker-sim"


def vhosts(node: LocalNode) -> set[str]:
    return {row["name"] for row in json.loads(node.ctl("list_vhosts", "name", "--formatter", "json"))}


async def test_the_management_api_tells_who_may_and_creates_for_an_administrator(
    managed_node: LocalNode,
) -> None:
    node, port = managed_node, managed_node.management_port or 0
    await asyncio.to_thread(node.ctl, "add_user", "watcher", "watcher-pw")
    await asyncio.to_thread(node.ctl, "set_user_tags", "watcher", "management")
    await asyncio.to_thread(node.ctl, "set_permissions", "-p", "/", "watcher", ".*", ".*", ".*")
    watcher = VhostAdmin(build_url("watcher", "watcher-pw", "127.0.0.1", node.port), management_port=port)
    admin = VhostAdmin(node.url, management_port=port)

    asked = await asyncio.to_thread(watcher.check, OWN)
    assert (asked.administrator, asked.may_switch, asked.via) == (False, False, "management API")
    with pytest.raises(VhostError, match="is not an administrator: an administrator can make one"):
        await asyncio.to_thread(watcher.create, OWN)
    assert OWN not in await asyncio.to_thread(vhosts, node)

    asked = await asyncio.to_thread(admin.check, OWN)
    assert (asked.administrator, asked.exists, asked.via) == (True, False, "management API")
    done = await asyncio.to_thread(admin.create, OWN)
    assert done == f"vhost {OWN!r}: created it and gave 'broker-sim' every permission on it (management API)"
    assert OWN in await asyncio.to_thread(vhosts, node)
    assert (await asyncio.to_thread(admin.check, OWN)).usable

    # once an administrator let the watcher in, switching to it needs no change at all
    await asyncio.to_thread(node.ctl, "set_permissions", "-p", OWN, "watcher", ".*", ".*", ".*")
    assert (await asyncio.to_thread(watcher.check, OWN)).usable
    assert await asyncio.to_thread(watcher.create, OWN) == (
        f"vhost {OWN!r} exists and 'watcher' may use it: nothing to change"
    )


async def test_a_user_the_api_refuses_and_no_rabbitmqctl_means_cannot_tell(managed_node: LocalNode) -> None:
    node = managed_node
    await asyncio.to_thread(node.ctl, "add_user", "plain", "plain-pw")  # no tags: no API for it
    plain = VhostAdmin(
        build_url("plain", "plain-pw", "127.0.0.1", node.port), management_port=node.management_port or 0
    )
    with pytest.raises(
        VhostError, match=r"cannot tell what 'plain' may do here \(management API: HTTP 401\)"
    ):
        await asyncio.to_thread(plain.check, OWN)
