"""Brokers under test: the embedded one (a child process in a tmp data dir) and the machine's RabbitMQ
(a vhost of this session's own, with tracing on). Every test taking ``broker`` runs on both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

from broker_sim.embedded.launch import EmbeddedBroker
from tests.support import missing_rabbitmq, rabbitmqctl, test_url, unreachable_reason


@dataclass(frozen=True)
class BrokerUnderTest:
    """A broker the suite talks to: its kind ('embedded' or 'rabbitmq'), URL and parts of it."""

    kind: str
    url: str
    host: str
    port: int
    user: str
    password: str
    vhost: str


@pytest.fixture(scope="session")
def embedded_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerUnderTest]:
    """One embedded broker for the session."""
    broker = EmbeddedBroker(tmp_path_factory.mktemp("embedded"), user="conf", password="conf-secret")
    broker.start_sync()
    try:
        yield BrokerUnderTest("embedded", broker.url, broker.host, broker.port, "conf", "conf-secret", "/")
    finally:
        broker.stop_sync()


@pytest.fixture(scope="session")
def rabbitmq_target() -> Iterator[BrokerUnderTest]:
    """The machine's RabbitMQ, in a vhost ``broker-sim-conf-…`` made (with tracing) and deleted here."""
    url = test_url()
    reason = unreachable_reason(url)
    if reason:
        missing_rabbitmq(reason)
    address = urlsplit(url)
    user, password = unquote(address.username or "guest"), unquote(address.password or "guest")
    host, port = address.hostname or "127.0.0.1", address.port or 5672
    vhost = f"broker-sim-conf-{uuid.uuid4().hex[:8]}"
    try:
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        rabbitmqctl("trace_on", "-p", vhost)
    except RuntimeError as exc:
        missing_rabbitmq(f"cannot make a vhost with rabbitmqctl ({exc})")
    try:
        yield BrokerUnderTest(
            "rabbitmq",
            f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(vhost, safe='')}",
            host,
            port,
            user,
            password,
            vhost,
        )
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(params=["embedded", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> BrokerUnderTest:
    """Each test runs once per broker; where they differ, RabbitMQ is right."""
    target: BrokerUnderTest = request.getfixturevalue(f"{request.param}_target")
    return target


@pytest.fixture
def name() -> str:
    """A unique name prefix for one test's queues and exchanges."""
    return f"conf-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """An embedded broker of this test's own, for restarts and crashes (never the shared RabbitMQ)."""
    broker = EmbeddedBroker(tmp_path / "data", user="conf", password="conf-secret")
    broker.start_sync()
    try:
        yield broker
    finally:
        broker.stop_sync()
