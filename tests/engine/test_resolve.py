"""Which broker broker-sim uses: the one named, the machine's RabbitMQ, or its own embedded one."""

from __future__ import annotations

from pathlib import Path

import aio_pika

from broker_sim.broker.handle import EmbeddedHandle, NodeOnThisMachine
from broker_sim.broker.resolve import resolve_broker
from broker_sim.settings import Settings

NOTHING_THERE = "amqp://guest:guest@127.0.0.1:1/"


async def test_with_no_url_given_and_nothing_answering_it_starts_the_embedded_broker(tmp_path: Path) -> None:
    handle = await resolve_broker(Settings(url=NOTHING_THERE, url_source="default", data_dir=tmp_path))
    try:
        assert isinstance(handle, EmbeddedHandle)
        assert handle.started_by_us and handle.can_restart
        assert handle.url != NOTHING_THERE
        assert (tmp_path / "embedded").is_dir()
        connection = await aio_pika.connect(handle.url)
        await connection.close()
    finally:
        await handle.close()


async def test_a_url_the_user_named_is_never_replaced(tmp_path: Path) -> None:
    handle = await resolve_broker(Settings(url=NOTHING_THERE, url_source="--url", data_dir=tmp_path))
    assert handle.url == NOTHING_THERE
    assert not handle.started_by_us
    assert not handle.can_restart
    assert "restart it yourself" in handle.restart_how


async def test_the_machines_own_node_is_offered_for_restart_only_with_confirmation(
    rabbitmq_url: str, tmp_path: Path
) -> None:
    handle = await resolve_broker(Settings(url=rabbitmq_url, url_source="--url", data_dir=tmp_path))
    assert isinstance(handle, NodeOnThisMachine)
    assert handle.can_restart and handle.needs_confirmation
