"""The store holds message bodies: the data dir is 0700 and its files 0600; passwords are compared in
constant time (``hmac.compare_digest`` on bytes, so any password, ASCII or not, works)."""

from __future__ import annotations

import stat
from pathlib import Path

import aio_pika
import aiormq.exceptions
import pytest

from broker_sim.embedded.launch import EmbeddedBroker
from tests.conformance.clients import channel
from tests.embedded_faults.conftest import BrokerFactory


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_data_dir_is_private(start_broker: BrokerFactory) -> None:
    """0700 for the folder, 0600 for the log, the lock and the broker's log."""
    broker = start_broker()
    async with channel(broker.url) as ch:
        await ch.declare_queue("q", durable=True)
        await ch.default_exchange.publish(aio_pika.Message(b"secret", delivery_mode=2), "q")
    broker.stop_sync()
    broker.start_sync()  # the log is rewritten by a compaction on start
    assert _mode(broker.data_dir) == 0o700
    for name in ("store.log", "lock", "broker.log"):
        assert _mode(broker.data_dir / name) == 0o600, name


async def test_a_non_ascii_password_logs_in_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    """The password check works on bytes: non-ASCII passwords log in, a wrong one does not."""
    broker = EmbeddedBroker(tmp_path / "data", user="ü-user", password="pässwörd-✓")
    broker.start_sync()
    try:
        async with channel(broker.url) as ch:
            await ch.declare_queue("", exclusive=True)
        wrong = broker.url.replace("p%C3%A4ssw%C3%B6rd", "passwort")
        assert wrong != broker.url
        with pytest.raises(aiormq.exceptions.ProbableAuthenticationError):
            await aio_pika.connect(wrong)
    finally:
        broker.stop_sync()
