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

from broker_sim.domain.scenario import DEFAULT_EXCHANGE, HeaderValue, Scenario
from broker_sim.domain.topic import MAX_KEY_BYTES
from broker_sim.domain.topic_match import pattern, split_words, topic_matches
from broker_sim.layout.from_scenario import exchange_label, exchanges_used


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
        elif raw[:1] in ("'", '"') or raw[-1:] in ("'", '"'):
            raise FormError(f'headers: {part!r} opens or closes a quote without the other (e.g. n="1")')
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


def key_hint(scenario: Scenario, exchange: str) -> str:
    """The routing key field's placeholder: a key that routes on this exchange, or why none is needed.

    Taken from the scenario: a queue's name on the default exchange, a binding key on a direct
    exchange, a key that matches binding patterns on a topic exchange (a producer's, else one made
    from the most specific pattern).
    """
    kind = scenario.exchange_type(exchange)
    bindings = [b for b in scenario.bindings if b.exchange == exchange]
    if exchange == DEFAULT_EXCHANGE:
        used = [k for p in scenario.producers if p.exchange == exchange for k in p.routing_keys]
        names = [k for k in used if scenario.queue(k)] + [q.name for q in scenario.queues]
        return f"e.g. {names[0]} (the default exchange routes by queue name)" if names else "a queue's name"
    if kind == "fanout":
        return "ignored: a fanout exchange copies to every bound queue"
    if kind == "headers":
        return "ignored: a headers exchange routes by the headers below"
    if kind == "topic":
        return _topic_hint([b.routing_key for b in bindings], scenario, exchange)
    keys = [b.routing_key for b in bindings if b.routing_key]
    if not keys:
        return "nothing is bound to this exchange yet: any key comes back"
    queues = ", ".join(
        f"exchange {b.to_exchange}" if b.to_exchange else b.queue
        for b in bindings
        if b.routing_key == keys[0]
    )
    return f"e.g. {keys[0]} (bound to {queues})"


def _topic_hint(patterns: list[str], scenario: Scenario, exchange: str) -> str:
    if not patterns:
        return "nothing is bound to this exchange yet: any key comes back"
    keys = [k for p in scenario.producers if p.exchange == exchange for k in p.routing_keys]
    specific = min(patterns, key=lambda p: sum(w in ("*", "#") for w in p.split(".")))
    made = ".".join("any" if w == "*" else w for w in specific.split(".") if w != "#") or "any"
    best = max([*keys, made], key=lambda k: sum(topic_matches(pattern(p), split_words(k)) for p in patterns))
    matched = [p for p in patterns if topic_matches(pattern(p), split_words(best))]
    return f"e.g. {best} (matches {', '.join(matched)})"


def headers_hint(scenario: Scenario, exchange: str) -> str:
    """The headers field's placeholder: headers that match a binding of a headers exchange."""
    if scenario.exchange_type(exchange) != "headers":
        return "optional, e.g. source=me (not used for routing here)"
    rule = next((b for b in scenario.bindings if b.exchange == exchange and b.headers), None)
    if rule is None:
        return "e.g. format=pdf, urgent=true"
    pairs = list(rule.headers.items())
    chosen = pairs if rule.match != "any" else pairs[:1]
    text = ", ".join(f"{name}={_header_text(value)}" for name, value in chosen)
    return f"e.g. {text} (routes to {rule.queue})"


def _header_text(value: HeaderValue) -> str:
    """A header value as the form reads it back (a string that looks like a number gets quotes)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        try:
            plain = parse_headers(f"v={value}").get("v") == value
        except FormError:  # a comma in it: the example cannot show it
            plain = False
        return value if plain else f'"{value}"'
    return str(value)


Send = Callable[[PublishRequest], Awaitable[str]]
"""Publishes a request; returns the message id or raises ValueError with the reason in words."""


class PublishForm(ModalScreen[str | None]):
    """A modal form; dismisses with the published message's id, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]
    AUTO_FOCUS = ""
    """The routing key gets the focus once the form is laid out (see :meth:`on_mount`)."""

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
            yield Input(
                draft.routing_key, placeholder=key_hint(self._scenario, draft.exchange), id="routing-key"
            )
            yield Label('headers  (name=value, comma separated; "1" is a string, 1 a number)')
            yield Input(draft.headers, placeholder=headers_hint(self._scenario, draft.exchange), id="headers")
            yield Label("body")
            yield Input(draft.body, id="body")
            yield Checkbox(
                "persistent (mode 2: survives a restart in a durable queue)",
                draft.persistent,
                id="persistent",
            )
            yield Label("", id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Publish", variant="primary", id="publish")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        """Focus the routing key after the first layout: focused before it, Textual would scroll a
        form taller than the terminal (24 rows) to centre the field, hiding the title and exchange."""
        self.call_after_refresh(self.query_one("#routing-key", Input).focus)

    @on(Select.Changed, "#exchange")
    def _exchange_changed(self, event: Select.Changed) -> None:
        """Examples that route on the exchange now chosen."""
        if isinstance(event.value, str):
            self.query_one("#routing-key", Input).placeholder = key_hint(self._scenario, event.value)
            self.query_one("#headers", Input).placeholder = headers_hint(self._scenario, event.value)

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
