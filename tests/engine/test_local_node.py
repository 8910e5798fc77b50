"""The private RabbitMQ node keeps everything it writes in its own folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker_sim.broker.local_node import LocalNode, LocalNodeError, find_rabbit_bin
from tests.support import missing_rabbitmq


def test_a_failing_rabbitmqctl_writes_its_crash_dump_into_the_nodes_log_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rabbit_bin = find_rabbit_bin()
    if rabbit_bin is None:
        missing_rabbitmq("rabbitmq-server is not installed: a private node needs it")
    elsewhere = tmp_path / "where-the-user-is"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    node = LocalNode(tmp_path / "node")
    (node.base_dir / "log").mkdir(parents=True)
    node._bin = rabbit_bin  # as start() finds it; the node itself is never started
    node._dist_port = 0
    # No home folder: Erlang cannot write its cookie there and stops with a crash dump, as it
    # did once when a test's teardown removed the folder under a late rabbitmqctl.
    with pytest.raises(LocalNodeError):
        node.ctl("status", timeout=60)
    assert (node.base_dir / "log" / "erl_crash.dump").exists()
    assert list(elsewhere.iterdir()) == []


def _listening(port: int) -> set[str]:
    """The addresses a TCP port listens on, from the kernel's own tables (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 as /proc shows them


async def test_a_private_node_listens_on_loopback_only(tmp_path: Path) -> None:
    if find_rabbit_bin() is None:
        missing_rabbitmq("rabbitmq-server is not installed: a private node needs it")
    node = LocalNode(tmp_path / "node")
    await node.start()
    try:
        ports = {"AMQP": node.port, "distribution": node._dist_port, "epmd": 4369}
        for what, port in ports.items():
            addresses = _listening(port)
            assert addresses, f"nothing listens for {what} on {port}"
            assert addresses <= LOOPBACK, f"{what} listens beyond loopback: {addresses}"
    finally:
        await node.stop()
