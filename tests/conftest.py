"""Fixtures: the brokers the behaviour tests run on.

``settings`` runs each test twice: on the machine's RabbitMQ (a vhost of the session's own,
tracing on) and on broker-sim's embedded broker (a child process, its own data dir). Tests that
need RabbitMQ's own tools (rabbitmqctl) take ``rabbitmq_settings`` instead.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from broker_sim.broker.handle import BrokerHandle, EmbeddedHandle, LocalNodeHandle
from broker_sim.broker.local_node import LocalNode, find_rabbit_bin, free_port
from broker_sim.domain.urls import parse_url, with_vhost
from broker_sim.settings import Settings
from tests.support import missing_rabbitmq, rabbitmqctl, test_url, unreachable_reason


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """A URL into a fresh vhost ``broker-sim-test-…`` with tracing on, deleted at the end.

    The vhost keeps the tests' queues and tracing away from anything else on the shared broker.
    """
    url = test_url()
    reason = unreachable_reason(url)
    if reason:
        missing_rabbitmq(reason)
    vhost = f"broker-sim-test-{uuid.uuid4().hex[:8]}"
    user = parse_url(url).user
    try:
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        rabbitmqctl("trace_on", "-p", vhost)
    except RuntimeError as exc:
        missing_rabbitmq(f"cannot make a test vhost with rabbitmqctl ({exc})")
    try:
        yield with_vhost(url, vhost)
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def embedded_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """broker-sim's embedded broker, one child process for the session."""
    from broker_sim.embedded.launch import EmbeddedBroker

    broker = EmbeddedBroker(tmp_path_factory.mktemp("embedded-broker"))
    broker.start_sync()
    try:
        yield broker.url
    finally:
        broker.stop_sync()


@pytest.fixture(params=["rabbitmq", "embedded"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """The URL of each broker in turn."""
    fixture = "rabbitmq_url" if request.param == "rabbitmq" else "embedded_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def settings(broker_url: str, tmp_path: Path) -> Settings:
    """Settings for one test on each broker: its URL, a private data dir."""
    return Settings(url=broker_url, url_source="test", data_dir=tmp_path)


@pytest.fixture
def rabbitmq_settings(rabbitmq_url: str, tmp_path: Path) -> Settings:
    """Settings for a test that needs RabbitMQ itself (it uses rabbitmqctl)."""
    return Settings(url=rabbitmq_url, url_source="test", data_dir=tmp_path)


@pytest.fixture(autouse=True)
def _private_data_dir_and_logging(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Keep tests out of the user's data folder, and undo the CLI's logging setup after each test."""
    import logging

    monkeypatch.setenv("BROKER_SIM_DATA_DIR", str(tmp_path / "data"))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture(params=["embedded", "local node"])
async def private_broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BrokerHandle]:
    """A broker of the test's own, each kind in turn: tests that restart a broker use this one."""
    handle: EmbeddedHandle | LocalNodeHandle
    if request.param == "embedded":
        handle = EmbeddedHandle(tmp_path / "embedded")
    else:
        if find_rabbit_bin() is None:
            missing_rabbitmq("rabbitmq-server is not installed: a private node needs it")
        handle = LocalNodeHandle(tmp_path)
    await handle.start()
    try:
        yield handle
    finally:
        await handle.close()


@pytest.fixture
async def managed_node(tmp_path: Path) -> AsyncIterator[LocalNode]:
    """A private RabbitMQ node with the management plugin (never the shared node, which has none)."""
    if find_rabbit_bin() is None:
        missing_rabbitmq("rabbitmq-server is not installed: a private node needs it")
    node = LocalNode(tmp_path / "managed-node", management_port=free_port())
    await node.start()
    try:
        yield node
    finally:
        await node.stop()
