"""The header: which broker (masked URL and kind), the link's state, traced or inferred routing."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from broker_sim.domain.events import LinkState
from broker_sim.settings import Settings
from broker_sim.tui.view_state import ScenarioView

GOOD = {LinkState.CONNECTED, LinkState.BACK}
BAD = {LinkState.UNREACHABLE, LinkState.AUTH_REFUSED, LinkState.LOST}


def broker_kind(settings: Settings) -> str:
    """How we reached the broker, in words (only external brokers exist so far)."""
    return f"external broker, URL from {settings.url_source}"


class BrokerHeader(Horizontal):
    """One line at the top; :meth:`show` updates it from the active tab's view."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings

    def compose(self) -> ComposeResult:
        """Title, broker, link state, routing source."""
        yield Static("broker-sim", id="title")
        yield Static(Text(f"{self._settings.masked_url}  ({broker_kind(self._settings)})"), id="broker")
        yield Static("not connected yet", id="link")
        yield Static("routing: ?", id="routing")

    def show(self, view: ScenarioView | None) -> None:
        """Show the state of the engine behind the active tab."""
        link = self.query_one("#link", Static)
        routing = self.query_one("#routing", Static)
        if view is None or view.link is None:
            link.update("○ starting")
            link.set_classes("")
        else:
            state = view.link.state
            attempt = f" (attempt {view.link.attempt})" if view.link.attempt > 1 and state not in GOOD else ""
            mark = "●" if state in GOOD else "✖" if state in BAD else "◌"
            link.update(f"{mark} {state}{attempt}")
            link.set_classes("good" if state in GOOD else "bad" if state in BAD else "pending")
        traced = None if view is None else view.traced
        if traced is None:
            routing.update("routing: ?")
            routing.set_classes("")
        elif traced:
            routing.update("routing: traced by the broker")
            routing.set_classes("good")
        else:
            routing.update("routing: INFERRED from deliveries")
            routing.set_classes("pending")
