"""Which broker the app runs on: found or started in a worker, with words for the first frame.

:func:`choose_broker` is the async work (run it in a worker, never on the UI loop);
:func:`progress_words` is what the screen says while it runs, and :class:`BrokerChoice` what the
header shows once it is done. ``broker_sim.broker`` is imported in a thread, so even its light
imports stay off the path to the first frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from broker_sim.domain.urls import parse_url
from broker_sim.settings import Settings
from broker_sim.tui.lazy import load_engine

if TYPE_CHECKING:
    from broker_sim.broker.handle import BrokerHandle


def progress_words(settings: Settings) -> str:
    """What the first frame says while the broker is being found or started."""
    match settings.broker:
        case "embedded":
            return "starting broker-sim's embedded broker…"
        case "local":
            return "booting a private RabbitMQ node (a few seconds)…"
        case "docker":
            return "starting a throwaway RabbitMQ container…"
        case _:
            where = parse_url(settings.url)
            return f"looking for the broker at {where.host}:{where.port}…"


@dataclass(frozen=True)
class BrokerChoice:
    """The broker the app settled on, and what the header says about it."""

    handle: BrokerHandle
    fell_back: bool = False
    """``--broker auto`` found nothing at the default URL and started the embedded broker."""
    data_dir: str = ""
    """Where a broker broker-sim started keeps its files (shown), or ""."""
    default_address: str = ""

    @property
    def hint(self) -> str:
        """The second header line: why this broker, and how to get another; "" when nothing to say."""
        if self.fell_back:
            return (
                f"no RabbitMQ at {self.default_address} — using broker-sim's embedded broker "
                f"(data: {self.data_dir}); for RabbitMQ: docker compose up -d, or --url"
            )
        if self.data_dir:
            return f"{self.handle.kind} started by broker-sim (data: {self.data_dir}); stopped when you quit"
        return ""


class BrokerProgress(Message):
    """What finding or starting the broker is doing now, in words."""

    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words


class BrokerChosen(Message):
    """The broker is found or started: engines may start."""

    def __init__(self, choice: BrokerChoice) -> None:
        super().__init__()
        self.choice = choice


class BrokerFailed(Message):
    """No broker could be found or started; ``reason`` says why, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


async def choose_broker(settings: Settings, say: Callable[[str], None]) -> BrokerChoice:
    """Find or start the broker the settings ask for; ``say`` reports progress in words.

    Raises OSError / RuntimeError (with a readable message) when a broker could not be started.
    """
    await asyncio.to_thread(load_engine)
    from broker_sim.broker import resolve

    address = parse_url(settings.url)
    default_address = f"{address.host}:{address.port}"
    fell_back = False
    if settings.broker == "auto" and settings.url_source == "default":
        if not await asyncio.to_thread(resolve.answers, settings.url):
            fell_back = True
            say(f"no RabbitMQ at {default_address}: starting broker-sim's embedded broker…")
            settings = settings.with_(broker="embedded")
    elif settings.broker == "auto":
        say(f"looking at the broker at {default_address} (URL from {settings.url_source})…")
    handle: BrokerHandle = await resolve.resolve_broker(settings)
    data_dir = ""
    if settings.broker == "embedded":
        data_dir = str(settings.data_dir / "embedded")
    elif settings.broker == "local":
        data_dir = str(getattr(handle, "base_dir", settings.data_dir / "local-node"))
    return BrokerChoice(handle, fell_back, data_dir, default_address)
