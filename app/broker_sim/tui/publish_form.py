"""The publish-your-own-message form: exchange, routing key, headers, body, persistent.

Bad input gives one line of error in the form and keeps everything typed; the form closes only
once the engine has taken the message (its fate then arrives as events, like any other).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select

from broker_sim.domain.scenario import HeaderValue, Scenario
from broker_sim.domain.topic import MAX_KEY_BYTES
from broker_sim.tui.diagram import exchanges_used
from broker_sim.tui.view_state import exchange_label


@dataclass
class Draft:
    """What the user typed (kept between openings of the form)."""

    exchange: str = ""
    routing_key: str = ""
    headers: str = ""
    body: str = "hello from broker-sim"
    persistent: bool = False


@dataclass(frozen=True)
class PublishRequest:
    """A message ready to publish."""

    exchange: str
    routing_key: str
    body: str
    headers: dict[str, HeaderValue] = field(default_factory=dict)
    persistent: bool = False


class FormError(ValueError):
    """Input the form refuses, with the reason in one line."""


def parse_headers(text: str) -> dict[str, HeaderValue]:
    """``format=pdf, urgent=true, n=3`` → headers; ``"..."`` keeps a value a string ("1" is not 1)."""
    headers: dict[str, HeaderValue] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = part.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name:
            raise FormError(f"headers: {part!r} is not name=value (e.g. format=pdf, urgent=true)")
        if raw.lower() in ("true", "false"):
            headers[name] = raw.lower() == "true"
        elif len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            headers[name] = raw[1:-1]
        else:
            try:
                number = json.loads(raw)
            except ValueError:
                headers[name] = raw
            else:
                headers[name] = number if isinstance(number, int | float) else raw
    return headers


def validate(draft: Draft) -> PublishRequest:
    """A request from a draft, or :class:`FormError` saying what to fix."""
    if len(draft.routing_key.encode()) > MAX_KEY_BYTES:
        raise FormError(f"routing key: at most {MAX_KEY_BYTES} bytes")
    headers = parse_headers(draft.headers)
    return PublishRequest(draft.exchange, draft.routing_key, draft.body, headers, draft.persistent)


Send = Callable[[PublishRequest], Awaitable[str]]
"""Publishes a request; returns the message id or raises ValueError with the reason in words."""


class PublishForm(ModalScreen[str | None]):
    """A modal form; dismisses with the published message's id, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]
    AUTO_FOCUS = "#routing-key"

    def __init__(self, scenario: Scenario, draft: Draft, send: Send) -> None:
        super().__init__()
        self._scenario = scenario
        self.draft = draft
        self._send = send
        if draft.exchange not in exchanges_used(scenario):
            draft.exchange = exchanges_used(scenario)[0]

    def compose(self) -> ComposeResult:
        """Fields, the error line, the buttons."""
        draft = self.draft
        options = [
            (f"{exchange_label(x)} ({self._scenario.exchange_type(x)})", x)
            for x in exchanges_used(self._scenario)
        ]
        with Vertical(id="publish-form"):
            yield Label(f"Publish a message in {self._scenario.title}", id="form-title")
            yield Label("exchange")
            yield Select(options, value=draft.exchange, allow_blank=False, id="exchange")
            yield Label("routing key")
            yield Input(draft.routing_key, placeholder="e.g. kern.critical", id="routing-key")
            yield Label('headers  (name=value, comma separated; "1" is a string, 1 a number)')
            yield Input(draft.headers, placeholder="e.g. format=pdf, urgent=true", id="headers")
            yield Label("body")
            yield Input(draft.body, id="body")
            yield Checkbox(
                "persistent (delivery mode 2: survives a broker restart in a durable queue)",
                draft.persistent,
                id="persistent",
            )
            yield Label("", id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Publish", variant="primary", id="publish")
                yield Button("Cancel", id="cancel")

    def _read(self) -> Draft:
        exchange = self.query_one("#exchange", Select).value
        draft = self.draft
        draft.exchange = exchange if isinstance(exchange, str) else draft.exchange
        draft.routing_key = self.query_one("#routing-key", Input).value
        draft.headers = self.query_one("#headers", Input).value
        draft.body = self.query_one("#body", Input).value
        draft.persistent = self.query_one("#persistent", Checkbox).value
        return draft

    def _error(self, text: str) -> None:
        self.query_one("#form-error", Label).update(text)

    @on(Button.Pressed, "#publish")
    @on(Input.Submitted)
    def submit(self) -> None:
        """Check the input, then publish."""
        try:
            request = validate(self._read())
        except FormError as exc:
            self._error(str(exc))
            return
        self._error("publishing…")
        self._publish(request)

    @work(exclusive=True, exit_on_error=False)
    async def _publish(self, request: PublishRequest) -> None:
        try:
            message_id = await self._send(request)
        except ValueError as exc:
            self._error(str(exc).splitlines()[0])
            return
        self.dismiss(message_id)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without publishing (what was typed is kept for next time)."""
        self._read()
        self.dismiss(None)
