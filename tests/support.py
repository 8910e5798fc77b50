"""Test helpers: wait on flow events with a deadline (never sleep), and reach the test broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import NoReturn

from broker_sim.broker.rabbitmqctl import run_rabbitmqctl
from broker_sim.domain.events import FlowEvent
from broker_sim.domain.scenario import Scenario
from broker_sim.domain.tally import Tally
from broker_sim.domain.urls import parse_url
from broker_sim.settings import Settings
from broker_sim.sim import Engine, EventBus

DEFAULT_TEST_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEADLINE = 20.0


def test_url() -> str:
    """The RabbitMQ the tests use: ``BROKER_SIM_TEST_URL`` or the machine's own."""
    return os.environ.get("BROKER_SIM_TEST_URL", DEFAULT_TEST_URL)


SHORT_SCENARIO = """
name = "short"
title = "Short and sweet"
duration = 1

[[queues]]
name = "q"

[[producers]]
name = "p"
exchange = ""
routing_keys = ["q"]
rate = 20

[[consumers]]
name = "c"
queue = "q"

[[expect]]
metric = "published"
at_least = 1
"""
"""A one-second scenario that passes on any broker: one queue, one producer, one consumer."""


def missing_rabbitmq(reason: str) -> NoReturn:
    """A test that needs RabbitMQ without one: a failure in CI (CI=true), a visible skip elsewhere."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"RabbitMQ is required in CI: {reason}")
    pytest.skip(f"RabbitMQ not available: {reason}")


def unreachable_reason(url: str) -> str | None:
    """Why nothing answers at the URL's host and port, or None when something does."""
    address = parse_url(url)
    try:
        with socket.create_connection((address.host, address.port), timeout=2):
            return None
    except OSError as exc:
        return f"nothing answers at {address.host}:{address.port} ({exc})"


def rabbitmqctl(*args: str) -> str:
    """Run rabbitmqctl against the machine's node (tests only; raises RabbitmqctlError on failure)."""
    return run_rabbitmqctl(*args)


class Conditions:
    """Lets a test wait until a condition holds, checked whenever :meth:`check` is called."""

    def __init__(self, context: Callable[[], str] = lambda: "") -> None:
        self._waiters: list[tuple[Callable[[], bool], asyncio.Event]] = []
        self._context = context

    def check(self) -> None:
        """Wake every waiter whose condition now holds (call it on each event or message)."""
        for predicate, flag in self._waiters:
            if not flag.is_set() and predicate():
                flag.set()

    async def until(self, predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
        """Wait until ``predicate()`` holds, or fail after ``timeout`` saying what was awaited."""
        if predicate():
            return
        flag = asyncio.Event()
        entry = (predicate, flag)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(flag.wait(), timeout)
        except TimeoutError:
            # A hang in CI cannot be reproduced at will: say where every task was waiting.
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for: {what}{self._context()}\n{where_tasks_wait()}"
            ) from None
        finally:
            self._waiters.remove(entry)


def where_tasks_wait() -> str:
    """One line per pending task of this loop: its name and the chain of awaits it is stuck in."""
    lines = []
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        chain, coro = [], task.get_coro()
        while coro is not None:  # follow what each coroutine awaits, down to the innermost one
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is None:
                break
            chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        lines.append(f"  {task.get_name()!r}: {' > '.join(chain[-6:]) or type(coro).__name__}")
    return "pending tasks:\n" + "\n".join(sorted(lines))


@dataclass
class Watcher:
    """Records every event of a bus and lets a test wait until a condition over them holds."""

    bus: EventBus
    events: list[FlowEvent] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    conditions: Conditions = field(init=False)

    def __post_init__(self) -> None:
        self.conditions = Conditions(self._recent)
        self.bus.subscribe(self._on_event)

    def _recent(self) -> str:
        return "\nthe last events:\n" + "\n".join(f"  {e!r:.200}" for e in self.events[-15:])

    def _on_event(self, event: FlowEvent) -> None:
        self.events.append(event)
        self.tally(event)
        self.conditions.check()

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        """The recorded events of one type."""
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
        """Wait until ``predicate()`` holds (checked on every event), or fail after ``timeout``."""
        await self.conditions.until(predicate, what, timeout)


@contextlib.asynccontextmanager
async def running(
    scenario: Scenario,
    settings: Settings,
    *,
    subscribers: tuple[Callable[[FlowEvent], None], ...] = (),
    prefix: str | None = None,
    **kwargs: object,
) -> AsyncIterator[tuple[Engine, Watcher]]:
    """Run a scenario on the test broker under a fresh name prefix (or ``prefix``); always stop and clean up.

    ``subscribers`` are on the bus before the engine starts, so they see every event.
    """
    prefix = prefix or f"t{uuid.uuid4().hex[:8]}."
    engine = Engine(scenario, settings, prefix=prefix, remove_durable=True, **kwargs)  # type: ignore[arg-type]
    watcher = Watcher(engine.bus)
    for subscriber in subscribers:
        engine.bus.subscribe(subscriber)
    await engine.start()
    try:
        await asyncio.wait_for(engine.ready(), DEADLINE)
        yield engine, watcher
    finally:
        await engine.stop()


@contextlib.asynccontextmanager
async def earlier_run_queue(url: str, queue_name: str, count: int) -> AsyncIterator[None]:
    """A durable queue holding ``count`` jobs of an earlier run (ids ``0ldrun00.server.N``); deleted after."""
    import aio_pika

    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, durable=True)
        for seq in range(1, count + 1):
            message = aio_pika.Message(b"old job", message_id=f"0ldrun00.server.{seq}", delivery_mode=2)
            await channel.default_exchange.publish(message, queue.name)
        yield
    finally:
        with contextlib.suppress(Exception):  # the test's own failure matters more than the cleanup's
            await (await connection.channel()).queue_delete(queue_name)
        await connection.close()
