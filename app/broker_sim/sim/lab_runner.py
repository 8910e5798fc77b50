"""The durability lab as the Durability tab runs it: in steps it can show, on any broker.

The tab imports no ``aio_pika`` (an import contract), so everything that touches the broker for
it is here: the probe for a broker that refuses non-durable queues (RabbitMQ 4.3+ by default),
the restart broker-sim does, the restart the user does by hand (held connection drops, then
the broker answers again), and errors turned into one line of words.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aio_pika
import aiormq

from broker_sim.broker.handle import BrokerHandle, RestartUnavailable
from broker_sim.sim.durability import LAB_QUEUES, DurabilityLab, LabResult, connect_plain
from broker_sim.sim.link import explain_failure

ANSWER_POLL = 0.2
"""Seconds between connection attempts while a restarted broker comes back."""
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class LabStep:
    """Where a lab run is: ``phase`` is publish, restart, await-user or count; ``text`` says it."""

    phase: str
    text: str


@dataclass
class LabReport:
    """A finished run: the lab's figures, who restarted the broker, and what the broker refused."""

    result: LabResult
    by_hand: bool = False
    refused: dict[str, str] = field(default_factory=dict)
    """Lab queue name → why the broker would not declare it (nothing was published there)."""


class LabRunner:
    """Runs the lab against one broker and reports each step through ``on_step``."""

    def __init__(self, broker: BrokerHandle, *, prefix: str, on_step: Callable[[LabStep], None]) -> None:
        self.broker = broker
        self.prefix = prefix
        self.on_step = on_step

    def _step(self, phase: str, text: str) -> None:
        self.on_step(LabStep(phase, text))

    async def _lab(self) -> tuple[DurabilityLab, dict[str, str]]:
        refused: dict[str, str] = {}
        for q in LAB_QUEUES:
            if not q.durable:
                why = await self._refuses_transient_queue(self.prefix + q.name)
                if why:
                    refused[q.name] = why
        queues = tuple(q for q in LAB_QUEUES if q.name not in refused)
        lab = DurabilityLab(self.broker, queues=queues, prefix=self.prefix, progress=self._step)
        return lab, refused

    async def _refuses_transient_queue(self, name: str) -> str:
        """Declare (then delete) a non-durable, non-exclusive queue: '' if allowed, else the reason.

        RabbitMQ 4.3+ refuses such queues by default, closing the whole connection (541,
        ``transient_nonexcl_queues``); the lab then runs without that queue and says why.
        """
        conn = await self._connect(CONNECT_TIMEOUT)
        try:
            channel = await conn.channel()
            try:
                queue = await channel.declare_queue(name, durable=False)
            except aiormq.exceptions.AMQPError as exc:
                return (
                    "this broker refuses non-durable, non-exclusive queues (RabbitMQ 4.3+ does by "
                    f"default: deprecated feature transient_nonexcl_queues); it said: {_reply(exc)}"
                )
            await queue.delete(if_unused=False, if_empty=False)
            return ""
        finally:
            with contextlib.suppress(aiormq.exceptions.AMQPError, RuntimeError, OSError):
                await conn.close()

    async def _connect(self, limit: float | None) -> aio_pika.abc.AbstractConnection:
        return await connect_plain(self.broker.url, limit)

    async def _until_answering(self) -> None:
        """Wait, for as long as it takes (the caller can cancel), until the broker answers."""
        await (await self._connect(None)).close()

    async def run(self, count: int, *, crash: bool = False) -> LabReport:
        """Publish ``count`` to each queue, let broker-sim restart the broker, count survivors."""
        lab, refused = await self._lab()
        return LabReport(await lab.run(count, crash=crash), refused=refused)

    async def run_by_hand(self, count: int) -> LabReport:
        """Publish, then wait for the user to restart the broker (seen as our connection dropping),
        wait for it to answer again, and count survivors. Waits until cancelled."""
        lab, refused = await self._lab()
        rows = await lab.publish(count)
        # a plain connection held open: the broker closes it (or it drops) when it goes down
        watch = await self._connect(CONNECT_TIMEOUT)
        down = asyncio.Event()
        watch.close_callbacks.add(lambda *_: down.set())
        self._step("await-user", "waiting for it to go down")
        try:
            await down.wait()
        finally:
            with contextlib.suppress(aiormq.exceptions.AMQPError, RuntimeError, OSError):
                await watch.close()
        started = time.monotonic()
        self._step("await-user", "it went down; waiting for it to answer again")
        await self._until_answering()
        seconds = time.monotonic() - started
        self._step("count", "counting survivors on a plain connection (passive declares)")
        await lab.count_after(rows)
        return LabReport(LabResult(rows, seconds), by_hand=True, refused=refused)

    async def cleanup(self) -> None:
        """Delete the lab's queues."""
        await DurabilityLab(self.broker, prefix=self.prefix).cleanup()


def _reply(exc: BaseException) -> str:
    """The broker's reply text of an AMQP error, without aiormq's framing around it."""
    texts = [a for a in exc.args if isinstance(a, str)]
    return (texts[-1] if texts else str(exc) or type(exc).__name__).splitlines()[0][:200]


def describe_failure(url: str, exc: BaseException) -> str:
    """One line saying what went wrong in a lab run (never a traceback)."""
    if isinstance(exc, RestartUnavailable):
        return str(exc)
    if isinstance(
        exc,
        aiormq.exceptions.ProbableAuthenticationError
        | aiormq.exceptions.AuthenticationError
        | aiormq.exceptions.ConnectionNotAllowed
        | ConnectionRefusedError
        | TimeoutError,
    ) or (isinstance(exc, aiormq.exceptions.AMQPConnectionError | OSError) and not _is_reply(exc)):
        return explain_failure(url, "", exc)[1]
    if isinstance(exc, aiormq.exceptions.AMQPError):
        return f"the broker closed the lab's channel or connection: {_reply(exc)}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}"


def _is_reply(exc: BaseException) -> bool:
    # a Connection.Close from the broker carries its reply text; a failed connect does not
    return isinstance(exc, aiormq.exceptions.ConnectionClosed) and any(isinstance(a, str) for a in exc.args)
