"""The inspector's broker side: what the management API says about the inspected station.

A plain class (no Textual): the tab calls :meth:`BrokerFeed.read` from a worker, at most once a
second while the inspector is open, and draws :meth:`BrokerFeed.side` with the other figures.
The HTTP requests run in a thread, never on the UI loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from broker_sim.broker.handle import BrokerHandle, EmbeddedHandle
from broker_sim.broker.station_reading import BrokerReading, StationQuery, read_station
from broker_sim.domain.urls import parse_url
from broker_sim.tui.inspection import BrokerSide

if TYPE_CHECKING:
    from broker_sim.sim import Engine

READ_EVERY = 1.0
"""Seconds between two readings of the same station: the API is asked at most this often."""


class BrokerFeed:
    """The latest management-API reading of the inspected station, in the scenario's names."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._latest: tuple[str, BrokerReading] | None = None
        self._asked: tuple[str, float] | None = None

    def side(self, broker: BrokerHandle | None, selection: str) -> BrokerSide | None:
        """What the panel shows from the API for ``selection`` (None: no broker known, a recording)."""
        if broker is None:
            return None
        if broker.management_url is None:
            return BrokerSide(missing=broker.management_missing)
        latest = self._latest
        reading = latest[1] if latest is not None and latest[0] == selection else None
        no_rates = "broker-sim's embedded broker keeps none" if isinstance(broker, EmbeddedHandle) else ""
        return BrokerSide(reading, no_rates=no_rates)

    def due(self, selection: str) -> bool:
        """Whether to ask now: another station, or a second since the last question."""
        asked = self._asked
        return asked is None or asked[0] != selection or self._clock() - asked[1] >= READ_EVERY

    async def read(self, broker: BrokerHandle, engine: Engine, selection: str) -> None:
        """Ask the API about the station now, in a thread; the answer replaces the latest one."""
        if broker.management_url is None:
            return
        self._asked = (selection, self._clock())
        query = station_query(engine, selection)
        reading = await asyncio.to_thread(read_station, engine.settings.url, broker.management_url, query)
        self.remember(selection, _in_scenario_names(reading, engine))

    def remember(self, selection: str, reading: BrokerReading) -> None:
        """Keep a reading of a station (scenario names) as the latest: what :meth:`read` does with
        an answer, and how snapshot tests show a recorded one."""
        self._latest = (selection, reading)


def station_query(engine: Engine, selection: str) -> StationQuery:
    """The station in the broker's names (prefixed queues and exchanges, consumers' channels)."""
    topology = engine.topology
    vhost = parse_url(engine.settings.url).vhost
    kind, _, name = selection.partition(":")
    if kind == "q":
        return StationQuery("q", vhost, queue=topology.queue_name(name))
    if kind == "x":
        return StationQuery("x", vhost, exchange=topology.exchange_name(name))
    if kind == "g" and (spec := engine.scenario.group(name)) is not None:
        return StationQuery("g", vhost, queue=topology.queue_name(spec.queue))
    if kind == "c":
        for group in engine.groups.values():
            for member in group.members:
                if member.name == name:
                    number = member.channel.number if member.channel is not None else None
                    queue = topology.queue_name(group.spec.queue)
                    return StationQuery("c", vhost, queue=queue, channel=number)
    if kind == "b":
        source, _, target = name.partition(">")
        exchange = topology.exchange_name(source.partition(":")[2])
        to_kind, _, to_name = target.partition(":")
        if to_kind == "x":
            return StationQuery(
                "b", vhost, exchange=exchange, destination_exchange=topology.exchange_name(to_name)
            )
        return StationQuery("b", vhost, exchange=exchange, queue=topology.queue_name(to_name))
    # a producer, a consumer gone, a group the scenario lacks: nothing at the broker to ask about
    return StationQuery("p", vhost)


def _in_scenario_names(reading: BrokerReading, engine: Engine) -> BrokerReading:
    topology = engine.topology

    def renamed(binding: dict[str, object]) -> dict[str, object]:
        destination = str(binding.get("destination", ""))
        to_queue = binding.get("destination_type") == "queue"
        return {
            **binding,
            "source": topology.exchange_from_broker(str(binding.get("source", ""))),
            "destination": topology.queue_key(destination)
            if to_queue
            else topology.exchange_from_broker(destination),
        }

    return dataclasses.replace(reading, bindings=tuple(renamed(b) for b in reading.bindings))
