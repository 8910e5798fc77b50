"""A vhost of broker-sim's own on the user's RabbitMQ: who may make one, and an engine moving in.

On the machine's RabbitMQ, with an administrator (guest) and a user who is not one, both made
or given a vhost by the test and removed after.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from broker_sim.broker.handle import NodeOnThisMachine
from broker_sim.broker.vhost import VhostAdmin, VhostError
from broker_sim.domain.events import TracingChanged
from broker_sim.domain.scenario_file import parse_scenario
from broker_sim.domain.urls import with_vhost
from broker_sim.headless import run_headless
from broker_sim.settings import Settings
from tests.own_vhost import UsersRabbitMQ, until_traced_after, users_rabbitmq
from tests.support import SHORT_SCENARIO, rabbitmqctl, running

__all__ = ["users_rabbitmq"]  # the fixture, imported to be found


def admin_for(url: str) -> VhostAdmin:
    return VhostAdmin(url, ctl=NodeOnThisMachine(url).ctl)


async def test_only_an_administrator_may_create_the_vhost(users_rabbitmq: UsersRabbitMQ) -> None:
    r = users_rabbitmq
    admin, user = admin_for(r.admin_url), admin_for(r.user_url)

    asked = await asyncio.to_thread(admin.check, r.own)
    assert (asked.administrator, asked.exists, asked.permitted) == (True, False, False)
    assert asked.may_switch and not asked.usable
    not_admin = await asyncio.to_thread(user.check, r.own)
    assert (not_admin.administrator, not_admin.may_switch) == (False, False)

    before = await asyncio.to_thread(r.definitions)
    with pytest.raises(VhostError, match=f"rabbitmqctl add_vhost {r.own}; rabbitmqctl set_permissions"):
        await asyncio.to_thread(user.create, r.own)
    assert await asyncio.to_thread(r.definitions) == before  # the refusal changed nothing

    done = await asyncio.to_thread(admin.create, r.own)
    assert done == f"vhost {r.own!r}: created it and gave 'guest' every permission on it (rabbitmqctl)"
    assert r.own in await asyncio.to_thread(r.vhosts)
    assert (await asyncio.to_thread(admin.check, r.own)).usable
    # the vhost exists now, but the other user still may not use it (nor create anything)
    after = await asyncio.to_thread(user.check, r.own)
    assert (after.exists, after.permitted, after.may_switch) == (True, False, False)


def flowing_scenario() -> str:
    return SHORT_SCENARIO.replace("duration = 1", "duration = 60")


async def test_an_engine_moves_into_the_new_vhost_and_routing_becomes_traced(
    users_rabbitmq: UsersRabbitMQ, tmp_path: Path
) -> None:
    r = users_rabbitmq
    scenario = parse_scenario(flowing_scenario(), "short.toml")
    settings = Settings(url=r.admin_url, url_source="test", data_dir=tmp_path)
    broker = NodeOnThisMachine(r.admin_url)
    async with running(scenario, settings, broker=broker) as (engine, w):
        assert not engine.traced
        assert "not broker-sim's to turn on" in w.of(TracingChanged)[-1].detail
        await asyncio.to_thread(admin_for(r.admin_url).create, r.own)
        seen = len(w.events)

        await engine.move_to(with_vhost(r.admin_url, r.own))
        await until_traced_after(w, seen)
        assert (await asyncio.to_thread(r.vhosts))[r.own] is True  # broker-sim turned tracing on there
        queues = await asyncio.to_thread(rabbitmqctl, "list_queues", "-p", r.plain, "name")
        assert engine.topology.queue_name("q") not in queues  # nothing left behind in the old vhost
        acked = w.tally.acked
        await w.until(lambda: w.tally.acked > acked, "messages still flow after the move")
    # a vhost of broker-sim's own keeps tracing on after a stop: another tab or process may read it
    assert (await asyncio.to_thread(r.vhosts))[r.own] is True


async def test_the_headless_runner_says_why_inferred_and_how_to_get_traced(
    users_rabbitmq: UsersRabbitMQ, tmp_path: Path
) -> None:
    r = users_rabbitmq
    path = tmp_path / "short.toml"
    path.write_text(SHORT_SCENARIO)
    settings = Settings(url=r.user_url, url_source="test", data_dir=tmp_path, own_vhost=r.own)
    err = io.StringIO()
    assert await run_headless(path, settings, out=io.StringIO(), err=err) == 0
    lines = err.getvalue().splitlines()
    advice = next(i for i, line in enumerate(lines) if line.startswith("broker-sim leaves tracing off"))
    assert lines[advice - 1].startswith("routing inferred:")
    assert lines[advice] == (
        f"broker-sim leaves tracing off in vhost {r.plain!r}, not its own. For the broker's own routing, "
        f"run in vhost {r.own!r}: the TUI's V key makes it if {r.user!r} is an administrator; else an "
        f"administrator can make one: rabbitmqctl add_vhost {r.own}; rabbitmqctl set_permissions -p {r.own} "
        f"{r.user} '.*' '.*' '.*' (or docker compose up -d), then broker-sim --vhost {r.own}"
    )
    assert r.own not in await asyncio.to_thread(r.vhosts)  # a headless run never creates anything
