"""The dialogs around a broker restart: "are you sure?" and "please restart it yourself".

:class:`ConfirmRestart` guards a broker other programs may use (the machine's RabbitMQ node, a
compose container); it and the Durability tab's question share :class:`YesNoScreen`.
:class:`ManualRestart` is for a broker broker-sim cannot restart: it asks the user to do it,
counts down, and closes by itself once the connection was lost and came back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static
from textual.widgets.button import ButtonVariant

from broker_sim.tui.outage import Outage

MANUAL_WAIT = 120.0
"""Seconds the manual-restart dialog waits for the broker to go away and come back."""


@dataclass(frozen=True)
class Question:
    """What a yes/no dialog asks: its title, the words under it, and its two buttons' labels."""

    title: str
    text: str
    yes: str
    no: str = "Cancel (Enter / n / Esc)"


class YesNoScreen(ModalScreen[bool]):
    """A yes/no question: dismisses with True on ``y`` or a click on the yes button, with False
    on ``n``, Esc or the other button.

    The "no" button has the focus, so Enter pressed out of habit answers no. A subclass says
    what it asks (a :class:`Question`) and sets ``PREFIX``: the dialog's widgets are
    ``PREFIX-dialog``, ``-title``, ``-buttons``, ``-yes`` and ``-no`` (the stylesheets use them).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "restart"),  # every question here but purge is "restart?"
        Binding("n,escape", "answer(False)", "cancel"),
    ]
    PREFIX: ClassVar[str] = "restart"
    YES_VARIANT: ClassVar[ButtonVariant] = "warning"
    AUTO_FOCUS = "#restart-no"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.AUTO_FOCUS = f"#{cls.PREFIX}-no"

    def __init__(self, question: Question) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        """The question, and two buttons."""
        prefix, question = self.PREFIX, self.question
        with Vertical(id=f"{prefix}-dialog"):
            yield Label(question.title, id=f"{prefix}-title")
            yield Static(question.text)
            with Horizontal(id=f"{prefix}-buttons"):
                yield Button(question.yes, id=f"{prefix}-yes", variant=self.YES_VARIANT)
                yield Button(question.no, id=f"{prefix}-no")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == f"{self.PREFIX}-yes")

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)


class ConfirmRestart(YesNoScreen):
    """Ask before restarting a broker that others may use; dismisses with True to go ahead.

    Cancel has the focus, so Enter (pressed out of habit) leaves the broker alone; only ``y`` or
    a click on "Restart" restarts it.
    """

    def __init__(self, kind: str, url: str, how: str, *, crash: bool = False) -> None:
        super().__init__(
            Question(
                f"{'crash and restart' if crash else 'restart'} {kind}?",
                f"The broker at {url}.\n"
                "Other programs on this machine may use it: their connections drop too.\n"
                f"How: {how}.",
                "Restart (y)",
            )
        )


class ManualRestart(ModalScreen[bool]):
    """Ask the user to restart the broker; close once it went away and came back (True) or on Esc.

    ``outage`` is the active tab's :class:`Outage`, which the tab keeps folding events into; the
    dialog compares its ``recoveries`` with the count when it opened, four times a second.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "stop_waiting", "stop waiting")]

    def __init__(
        self,
        url: str,
        outage: Outage,
        *,
        wait: float = MANUAL_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._url = url
        self._outage = outage
        self._recoveries = outage.recoveries
        self._losses = outage.losses
        self._clock = clock
        self._deadline = clock() + wait

    def compose(self) -> ComposeResult:
        """What to do, and the countdown."""
        with Vertical(id="restart-dialog"):
            yield Label("restart the broker yourself", id="restart-title")
            yield Static(
                f"broker-sim cannot restart the broker at {self._url} itself.\n"
                "Restart it where it runs (docker restart NAME, systemctl restart rabbitmq-server, …):\n"
                "broker-sim notices it go away and reconnects by itself; this closes when it is back."
            )
            yield Static("", id="countdown")
            yield Label("Esc: stop waiting (nothing is undone)", classes="dim")

    def on_mount(self) -> None:
        """Tick the countdown."""
        self._tick()
        self.set_interval(0.25, self._tick)

    def _tick(self) -> None:
        left = self._deadline - self._clock()
        if self._outage.recoveries > self._recoveries:
            self.dismiss(True)
            return
        if left <= 0:
            self.notify("stopped waiting for the broker restart", severity="warning", timeout=4)
            self.dismiss(False)
            return
        gone = self._outage.losses > self._losses
        state = (
            self._outage.text(self._clock()) if gone else "waiting for the broker to go away and come back"
        )
        self.query_one("#countdown", Static).update(f"{state}\nwaiting {left:.0f} s more")

    def action_stop_waiting(self) -> None:
        """Stop waiting; the engines keep reconnecting by themselves anyway."""
        self.dismiss(False)
