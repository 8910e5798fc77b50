"""Why routing is inferred, and the offer to fix it on one key: a vhost of broker-sim's own.

On a user's RabbitMQ (vhost ``/``) broker-sim never turns tracing on, so routing is inferred.
:class:`OwnVhostOffer` is the line under the header that says so and, where the URL's user may
(an administrator, or the vhost is already theirs), offers ``V``: after a yes in
:class:`ConfirmOwnVhost` it creates the vhost, remembers the choice in the data dir and posts
:class:`OwnVhostReady`, on which the app moves every engine there. Nothing changes without that
yes. The broker work (``broker_sim.broker.vhost``) runs in threads, imported in one first
(:func:`~broker_sim.tui.lazy.load_vhost_admin`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import events, work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from broker_sim.domain.own_vhost import how_to_get_one, why_inferred
from broker_sim.domain.urls import names_vhost, parse_url, with_vhost
from broker_sim.remembered_vhost import memory_path, remember_vhost
from broker_sim.settings import Settings
from broker_sim.tui.lazy import load_vhost_admin
from broker_sim.tui.restart import Question, YesNoScreen
from broker_sim.tui.view_state import ScenarioView

if TYPE_CHECKING:
    from broker_sim.broker.handle import BrokerHandle
    from broker_sim.broker.vhost import VhostAccess

log = logging.getLogger(__name__)


class OwnVhostReady(Message):
    """The user's vhost of broker-sim's own is ready at ``url``: move every engine there."""

    def __init__(self, url: str, done: str) -> None:
        super().__init__()
        self.url = url
        self.done = done
        """What was done on the broker, in words."""


class ConfirmOwnVhost(YesNoScreen):
    """Asks before creating the vhost and moving the tabs: says exactly what will change.

    "Not now" has the focus, so Enter pressed out of habit changes nothing.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("y", "answer(True)", "yes")]
    PREFIX = "vhost"

    def __init__(self, access: VhostAccess, broker_url: str, settings: Settings) -> None:
        super().__init__(_question(access, broker_url, settings))


def _question(a: VhostAccess, broker_url: str, settings: Settings) -> Question:
    """What the offer asks, and every change a yes makes."""
    where = parse_url(broker_url)
    if a.usable:
        first = f"vhost {a.vhost!r} exists and {a.user!r} may use it: nothing on the broker changes"
    elif a.exists:
        first = f"give {a.user!r} every permission on the existing vhost {a.vhost!r} ({a.via})"
    else:
        first = (
            f"create vhost {a.vhost!r} on {where.host}:{where.port} "
            f"and give {a.user!r} every permission on it ({a.via})"
        )
    chosen_by = settings.vhost_source or "the URL"
    if names_vhost(settings.url) and not chosen_by.startswith("remembered"):
        later = f"{chosen_by} names vhost {where.vhost!r}: drop that so the next start goes to {a.vhost!r}"
    else:
        memory = memory_path(settings.data_dir)
        later = f"remember it in {memory}: the next start goes there (--vhost / goes back)"
    return Question(
        f"Run the tabs in a vhost of broker-sim's own, {a.vhost!r}?",
        f"broker-sim turns tracing on only in a vhost of its own, never in {where.vhost!r}.\n"
        f"With your yes it will:\n"
        f"  • {first}\n"
        f"  • move every tab there now: each reconnects, and what it declared in {where.vhost!r} "
        "is removed\n"
        f"  • turn tracing on there (it stays on: the vhost is broker-sim's own)\n"
        f"  • {later}",
        "Yes, move there (y)",
        "Not now (Enter / n / Esc)",
    )


class OwnVhostOffer(Static):
    """The line under the header while routing is inferred: why, and ``V`` to fix it (or how to).

    :meth:`follow` is called with the active tab's view whenever the header is redrawn; the first
    time routing shows as inferred it asks the broker (reads only, in a thread) what the user may.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__("", id="why")
        self.settings = settings
        self.broker: BrokerHandle | None = None
        self.access: VhostAccess | None = None
        self.phase = "idle"
        """idle → checking → offered / cannot / not-ours → making → moving (→ moved)."""
        self.reason = ""
        """The shown tab's engine's words on tracing: shown when no offer applies."""

    def on_mount(self) -> None:
        """Hidden until routing shows as inferred."""
        self.display = False

    def follow(self, view: ScenarioView | None, broker: BrokerHandle | None) -> None:
        """Show why routing is inferred for this view (and start asking what the user may)."""
        self.broker = broker
        traced = None if view is None else view.traced
        if traced is not False or broker is None:
            if traced and self.phase == "moving":
                self.phase = "moved"
            self.display = False
            return
        self.reason = view.tracing.detail if view is not None and view.tracing is not None else ""
        if self.phase in ("idle", "moved"):
            self.phase = "checking"
            self._check(broker)
        self._show()

    def _show(self) -> None:
        words = self._words()
        if self.size.width and len(words) > self.size.width:
            # wrapped, the key would hang at a line's end away from what it does: break before it
            words = words.replace(" — V:", "\nV:", 1)
        if str(self.content) != words:  # asked 8 times a second: an update lays the screen out
            self.update(Text(words))
        self.display = True

    def _words(self) -> str:
        url = self.broker.url if self.broker else self.settings.url
        vhost, own = parse_url(url).vhost, self.settings.own_vhost
        why = f"routing inferred: {why_inferred(vhost)}"
        match self.phase:
            case "offered" if self.access is not None and self.access.usable:
                return f"{why} — V: switch to vhost {own!r} (yours already)"
            case "offered":
                return f"{why} — V: run in a vhost of its own, {own!r} (asks first)"
            case "cannot":
                return f"{why}; {how_to_get_one(own, parse_url(url).user)}"
            case "making":
                return f"creating vhost {own!r}…"
            case "moving":
                return f"moving every tab into vhost {own!r}: each reconnects, then the broker traces"
            case "not-ours":
                return f"routing inferred: {self.reason}"
        return why

    @work(group="own-vhost", exclusive=True, exit_on_error=False)
    async def _check(self, broker: BrokerHandle) -> None:
        await asyncio.to_thread(load_vhost_admin)
        from broker_sim.broker import tracing
        from broker_sim.broker import vhost as vhost_module

        trace = self.settings.trace
        if trace is not None or tracing.may_trace(broker.url, trace, started_by_us=broker.started_by_us):
            # the user chose (--trace, --no-trace), or broker-sim was allowed to trace here and
            # could not: a vhost of its own would not help; say what the engine found
            self.phase = "not-ours"
            self._show()
            return
        admin = vhost_module.VhostAdmin(broker.url, ctl=broker.ctl)
        try:
            self.access = await asyncio.to_thread(admin.check, self.settings.own_vhost)
        except vhost_module.VhostError as exc:
            log.info("cannot offer a vhost of broker-sim's own: %s", exc)
            self.access = None
        self.phase = "offered" if self.access is not None and self.access.may_switch else "cannot"
        if self.display:
            self._show()

    def on_click(self, event: events.Click) -> None:
        """A click on the line does what ``V`` does (the mouse twin)."""
        self.ask()

    def ask(self) -> None:
        """``V``: ask the user, then create and move; or say why not now."""
        if self.phase != "offered" or self.access is None or self.broker is None:
            self.notify(self._not_now(), title="vhost", severity="warning", timeout=6)
            return
        access, broker = self.access, self.broker

        def answered(yes: bool | None) -> None:
            if yes:
                self._make(access, broker)
            else:
                self.notify("nothing changed", title="vhost", timeout=3)

        self.app.push_screen(ConfirmOwnVhost(access, broker.url, self.settings), answered)

    def _not_now(self) -> str:
        match self.phase:
            case "idle" | "moved":
                return "V works while routing is inferred; this tab's routing is not (or not known yet)"
            case "checking":
                return "still asking the broker what you may do; try again in a moment"
            case "making" | "moving":
                return f"already moving into vhost {self.settings.own_vhost!r}"
        return self._words()

    @work(group="own-vhost", exclusive=True, exit_on_error=False)
    async def _make(self, access: VhostAccess, broker: BrokerHandle) -> None:
        await asyncio.to_thread(load_vhost_admin)
        from broker_sim.broker import vhost as vhost_module

        self.phase = "making"
        self._show()
        admin = vhost_module.VhostAdmin(broker.url, ctl=broker.ctl)
        try:
            done = await asyncio.to_thread(admin.create, access.vhost)
        except vhost_module.VhostError as exc:
            self.phase = "offered"
            self._show()
            self.notify(str(exc), title="vhost", severity="error", timeout=10)
            return
        try:
            await asyncio.to_thread(remember_vhost, self.settings.data_dir, self.settings.url, access.vhost)
        except (OSError, ValueError) as exc:  # the move still helps now; only the next start is affected
            self.notify(
                f"could not remember the choice ({exc}); start with --vhost {access.vhost} next time",
                title="vhost",
                severity="warning",
                timeout=10,
            )
        self.phase = "moving"
        self._show()
        self.post_message(OwnVhostReady(with_vhost(broker.url, access.vhost), done))
