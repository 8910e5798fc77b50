"""The inspector: a panel beside the diagram with everything about the selected station.

It lays out an :class:`~broker_sim.tui.inspection.Inspection` (each figure tagged with where it
comes from) and offers the station's actions as buttons that run the same app actions as the keys;
:class:`ConfirmPurge` asks before the one action that destroys messages.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import var
from textual.widgets import Button, Static

from broker_sim.tui.inspection import Action, Inspection
from broker_sim.tui.restart import Question, YesNoScreen

SOURCE_STYLE = {"scenario": "cyan", "engine": "green", "broker": "magenta"}


class StationPanel(VerticalScroll):
    """The inspector panel: facts with their sources, the latest messages, action buttons.

    Bound to its tab's ``inspection`` (set once per figures tick): it redraws only when the
    inspection differs from the one shown."""

    inspection: var[Inspection | None] = var(None)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._actions: list[Action] = []

    def compose(self) -> ComposeResult:
        """The heading, the buttons (above the facts, so they stay put as figures change), the facts."""
        yield Static("", id="inspection-heading")
        yield Horizontal(id="inspector-actions")
        yield Static("", id="inspection")

    def watch_inspection(self, inspection: Inspection | None) -> None:
        """Show one station's facts (the panel is hidden while there is none)."""
        if inspection is None:
            return
        heading = Text(inspection.heading, "bold")
        heading.append("   Esc closes · ←→ next station", "dim")
        self.query_one("#inspection-heading", Static).update(heading)
        self.query_one("#inspection", Static).update(_text(inspection))
        if inspection.actions != self._actions:
            self._actions = inspection.actions
            row = self.query_one("#inspector-actions", Horizontal)
            row.remove_children()
            row.mount_all(
                Button(f"{a.label} ({a.key})", action=f"app.{a.action}", compact=True)
                for a in inspection.actions
            )


def _text(inspection: Inspection) -> Text:
    text = Text("where each figure comes from: ", "dim")
    text.append("scenario", SOURCE_STYLE["scenario"]).append(" · ", "dim")
    text.append("engine", SOURCE_STYLE["engine"]).append(" · ", "dim")
    text.append("broker\n", SOURCE_STYLE["broker"])
    width = max((len(f.label) for f in inspection.facts), default=0)
    for fact in inspection.facts:
        text.append(f"{fact.label:<{width}}  ", "dim")
        text.append(fact.value)
        text.append(f"  {fact.source}\n", SOURCE_STYLE[fact.source])
    if inspection.recent:
        text.append("\nlatest messages\n", "bold")
        for line in inspection.recent:
            text.append(f"{line}\n")
    return text


class ConfirmPurge(YesNoScreen):
    """Ask before purging a queue (its ready messages are gone for good); True to go ahead.

    Cancel has the focus, so Enter pressed out of habit keeps the messages; only ``y`` or a click
    on "Purge" purges.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "purge"),
        Binding("n,escape", "answer(False)", "cancel"),
    ]
    PREFIX = "purge"
    YES_VARIANT = "error"

    def __init__(self, queue: str, ready: int | None) -> None:
        now = "" if ready is None else f" ({ready} at the latest count)"
        super().__init__(
            Question(
                f"purge queue {queue}?",
                f"The broker drops every ready message of {queue}{now} (queue.purge): they cannot "
                "be brought back. Messages a consumer holds unacked stay with it. broker-sim counts "
                "the dropped ones as purged, not lost.",
                "Purge (y)",
            )
        )
