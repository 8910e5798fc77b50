"""The header: which broker (kind and masked URL), the link's state, traced or inferred routing.

A second line appears when there is something to know about the broker itself: that broker-sim
fell back to its embedded broker (and how to get RabbitMQ), where a broker it started keeps its
files, why no broker could be started, or that the vhost is the one remembered from before.
A third, :class:`OwnVhostOffer`, says why routing is inferred and how to get it traced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive, var
from textual.widgets import Static

from broker_sim.domain.events import LinkState
from broker_sim.domain.urls import parse_url
from broker_sim.settings import Settings
from broker_sim.tui.broker_choice import BrokerChoice, progress_words
from broker_sim.tui.outage import Outage
from broker_sim.tui.vhost_offer import OwnVhostOffer
from broker_sim.tui.view_state import ScenarioView

if TYPE_CHECKING:
    from broker_sim.broker.handle import BrokerHandle

GOOD = {LinkState.CONNECTED, LinkState.BACK}
BAD = {LinkState.UNREACHABLE, LinkState.AUTH_REFUSED, LinkState.LOST}


class Said(Static):
    """A part of the header line: its words and colour class, redrawn only when either changed
    (the header is told 8 times a second, and each update lays the screen out again)."""

    said: reactive[tuple[str, str]] = reactive(("", ""), repaint=False)

    def watch_said(self, said: tuple[str, str]) -> None:
        """Show the new words in their colour."""
        text, classes = said
        self.update(text)
        self.set_classes(classes)


class BrokerHeader(Vertical):
    """The top line (and the hint under it); :meth:`show` updates it from the active tab."""

    link: var[tuple[str, str]] = var(("", ""))
    """The link's state in words, and its colour class."""
    routing: var[tuple[str, str]] = var(("", ""))
    """Whether routing is traced or inferred, and its colour class."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        self._handle: BrokerHandle | None = None
        self.offer = OwnVhostOffer(settings)

    def compose(self) -> ComposeResult:
        """Title, broker, link state, routing source; the hint line."""
        with Horizontal(id="header-line"):
            yield Static("broker-sim", id="title")
            yield Static(Text(progress_words(self._settings)), id="broker", classes="pending")
            yield Said(id="link").data_bind(said=BrokerHeader.link)
            yield Said(id="routing").data_bind(said=BrokerHeader.routing)
        yield Static("", id="hint")
        yield self.offer

    def on_mount(self) -> None:
        """No hint until the broker is known."""
        self.query_one("#hint").display = False

    def progress(self, words: str) -> None:
        """Say what finding or starting the broker is doing now."""
        self.query_one("#broker", Static).update(Text(words))

    def chosen(self, choice: BrokerChoice) -> None:
        """The broker is known: its kind and masked URL, and the hint when there is one."""
        self._handle = handle = choice.handle
        self._name_broker(handle)
        remembered = self._settings.vhost_source.startswith("remembered") and not handle.started_by_us
        vhost = f"vhost {parse_url(handle.url).vhost!r} {self._settings.vhost_source} (--vhost / goes back)"
        self._hint(choice.hint or (vhost if remembered else ""), "")

    def _name_broker(self, handle: BrokerHandle) -> None:
        broker = self.query_one("#broker", Static)
        source = "" if handle.started_by_us else f", URL from {self._settings.url_source}"
        broker.update(Text(f"{handle.masked_url}  ({handle.kind}{source})"))
        broker.set_classes("")

    def moved(self, handle: BrokerHandle) -> None:
        """The engines moved to another vhost of the same broker: name its new URL."""
        self._name_broker(handle)
        self._hint("", "")

    def recorded(self) -> None:
        """No engines (snapshots fed by recorded events): name the settings' URL, as before."""
        broker = self.query_one("#broker", Static)
        broker.update(Text(f"{self._settings.masked_url}  (URL from {self._settings.url_source})"))
        broker.set_classes("")

    def failed(self, reason: str) -> None:
        """No broker could be started: say so (the tab's panel says more)."""
        self.query_one("#broker", Static).update(Text("no broker"))
        self.query_one("#broker", Static).set_classes("bad")
        self._hint(f"could not start the broker: {reason}", "bad")

    def _hint(self, text: str, classes: str) -> None:
        hint = self.query_one("#hint", Static)
        hint.update(Text(text))
        hint.set_classes(classes)
        hint.display = bool(text)

    def show(self, view: ScenarioView | None, outage: Outage | None = None, now: float = 0.0) -> None:
        """Show the state of the engine behind the active tab (and how long the broker has been away)."""
        away = outage.text(now) if outage is not None else ""
        if view is None or view.link is None:
            self.link = ("", "")
        elif away and outage is not None and outage.active:
            self.link = (f"◌ {away}", "bad" if outage.phase == "down" else "pending")
        else:
            state = view.link.state
            attempt = f" (attempt {view.link.attempt})" if view.link.attempt > 1 and state not in GOOD else ""
            mark = "●" if state in GOOD else "✖" if state in BAD else "◌"
            words = away if state == LinkState.BACK and away else f"{state}{attempt}"
            self.link = (f"{mark} {words}", "good" if state in GOOD else "bad" if state in BAD else "pending")
        traced = None if view is None else view.traced
        self.offer.follow(view, self._handle)
        if traced is None:
            self.routing = ("", "")
        elif traced:
            self.routing = ("routing: traced by the broker", "good")
        else:
            self.routing = ("routing: INFERRED from deliveries", "pending")
