"""Choosing the broker: the one the user named, a private one broker-sim starts, or the default.

``--broker auto`` (the default) uses the URL from --url / BROKER_SIM_URL / .env when there is
one; with none, RabbitMQ at the default URL when something answers there, else the embedded
broker. A broker that answers but refuses the login is reported, never silently replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from broker_sim.broker.handle import (
    BrokerHandle,
    ContainerHandle,
    DockerContainerHandle,
    EmbeddedHandle,
    LocalNodeHandle,
    NodeOnThisMachine,
    find_container_by_port,
    node_answers_rabbitmqctl,
)
from broker_sim.domain.urls import parse_url
from broker_sim.settings import Settings

BROKER_KINDS = ("auto", "embedded", "local", "docker")


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    address = parse_url(url)
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout):
            return True
    except OSError:
        return False


def classify_external(url: str) -> BrokerHandle:
    """A handle for a broker broker-sim did not start, with the best restart it can offer."""
    port = parse_url(url).port
    if parse_url(url).is_loopback:
        container = find_container_by_port(port)
        if container is not None:
            return DockerContainerHandle(url, container)
        if node_answers_rabbitmqctl(url):
            return NodeOnThisMachine(url)
    return BrokerHandle(url)


async def resolve_broker(settings: Settings) -> BrokerHandle:
    """Find or start the broker the settings ask for (blocking work runs in threads)."""
    kind = settings.broker
    if kind == "embedded" or (
        kind == "auto"
        and settings.url_source == "default"
        and not await asyncio.to_thread(answers, settings.url)
    ):
        return await _started(EmbeddedHandle(settings.data_dir / "embedded"))
    if kind == "local":
        return await _started(LocalNodeHandle(settings.data_dir / "local-node"))
    if kind == "docker":
        return await _started(ContainerHandle())
    handle = await asyncio.to_thread(classify_external, settings.url)
    await asyncio.to_thread(handle.find_management, settings.management_url)
    return handle


async def _started(handle: EmbeddedHandle | LocalNodeHandle | ContainerHandle) -> BrokerHandle:
    """Start a broker broker-sim owns; if that fails or is cancelled (a quit), stop what began."""
    try:
        await handle.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.shield(handle.close())
        raise
    return handle
