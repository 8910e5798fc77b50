"""Private embedded brokers for the fault suite (never the shared RabbitMQ): each test starts the ones
it needs, with the options and injected faults it wants, and they are stopped at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from broker_sim.embedded.faults import FAULTS_ENV
from broker_sim.embedded.launch import EmbeddedBroker

BrokerFactory = Callable[..., EmbeddedBroker]


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator[BrokerFactory]:
    """``start_broker(data_dir=…, options=[…], faults="write@3=EIO")``: a started private broker."""
    started: list[EmbeddedBroker] = []

    def start(data_dir: Path | None = None, options: Sequence[str] = (), faults: str = "") -> EmbeddedBroker:
        broker = EmbeddedBroker(
            data_dir or tmp_path / "data",
            user="faults",
            password="faults-secret",
            options=options,
            environment={FAULTS_ENV: faults} if faults else None,
        )
        broker.start_sync()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop_sync()
