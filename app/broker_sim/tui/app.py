"""The app: a header, one tab per scenario, the footer; keys go to the tab on show.

:func:`make_app` is the one way to build it, for the CLI and for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.widget import AwaitMount
from textual.widgets import Footer, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from broker_sim.domain.events import LinkState
from broker_sim.domain.scenario import Scenario
from broker_sim.domain.scenario_file import ScenarioError, load_scenarios
from broker_sim.domain.words import in_words
from broker_sim.layout.columns import warm_up as warm_up_ordering
from broker_sim.resources import builtin_scenarios_dir, styles_dir
from broker_sim.settings import Settings
from broker_sim.tui.broker_choice import (
    BrokerChoice,
    BrokerChosen,
    BrokerFailed,
    BrokerProgress,
    choose_broker,
)
from broker_sim.tui.durability_tab import DurabilityTab, crash_allowed
from broker_sim.tui.header import BrokerHeader
from broker_sim.tui.heap import freeze_loaded, tune_collector
from broker_sim.tui.ids import widget_id
from broker_sim.tui.inspector import ConfirmPurge
from broker_sim.tui.lazy import load_engine, load_help
from broker_sim.tui.pattern_tab import PatternTab, ViewChanged
from broker_sim.tui.publish_form import Draft, PublishForm
from broker_sim.tui.restart import ConfirmRestart, ManualRestart
from broker_sim.tui.tab_strip import TabStrip
from broker_sim.tui.vhost_offer import OwnVhostReady

if TYPE_CHECKING:
    from broker_sim.broker.handle import BrokerHandle
    from broker_sim.sim import Engine

STOP_GRACE = 5.0
"""Seconds each engine gets to clean up on quit before the app leaves anyway."""
STYLESHEETS = ("app.tcss", "flow.tcss", "forms.tcss", "durability.tcss")
DURABILITY_PANE = "pane-durability"
HEADER_HZ = 4
MOUNT_PAUSE = 0.02
"""Seconds between mounting two hidden tabs after the first frame (a frame or so)."""
"""While the broker is away, the header's elapsed time moves this often."""
UPLOAD_SCENARIO = "work-queue"
"""The tab whose main server takes uploads with ``--api-port``."""


LETTER_KEYS = {"confirms": "c"}
"""Keys of built-in tabs past the ninth: digits 1-9 are taken and 0 opens Durability, so such a
tab gets the first letter of its name, shown in its tab's label as the digits are."""


class BrokerSimApp(App[None]):
    """broker-sim's terminal UI."""

    TITLE = "broker-sim"
    ENABLE_COMMAND_PALETTE = False  # every action has its key; the palette only crowds the footer
    BINDINGS: ClassVar[list[BindingType]] = [
        # footer words are short so every key fits; the help screen shows the tooltips
        Binding("question_mark", "help", "help", key_display="?", tooltip="this help"),
        Binding("tab", "next_tab", "pattern", key_display="Tab", priority=True, tooltip="next pattern (tab)"),
        Binding(
            "shift+tab", "previous_tab", "previous", show=False, priority=True, tooltip="previous pattern"
        ),
        Binding(
            "plus",
            "add_consumer",
            "consumer",
            key_display="+",
            tooltip="add a consumer to the selected group",
        ),
        Binding(
            "minus",
            "remove_consumer",
            "consumer",
            key_display="-",
            tooltip="remove a consumer (it finishes its job)",
        ),
        Binding(
            "g", "next_group", "group", tooltip="select the next consumer group (the one + - f k act on)"
        ),
        Binding("space", "pause", "pause", tooltip="pause / resume this tab's producers"),
        Binding(
            "right",
            "select_station(1)",
            "inspect",
            key_display="←→",
            priority=True,
            tooltip="select the next station (← the previous) and inspect it; a click does too",
        ),
        Binding(
            "left", "select_station(-1)", "", show=False, priority=True, tooltip="select the previous station"
        ),
        Binding("escape", "close_inspector", "", show=False, tooltip="close the inspector"),
        Binding("up", "faster", "faster", key_display="↑", tooltip="double the publish rate"),
        Binding("down", "slower", "slower", key_display="↓", tooltip="halve the publish rate"),
        Binding("f", "prefetch", "prefetch", tooltip="prefetch 1 (fair dispatch) / unlimited (round robin)"),
        Binding(
            "k",
            "kill",
            "kill",
            tooltip="kill a consumer, a busy one if any: its unacked jobs are redelivered",
        ),
        Binding(
            "e",
            "purge",
            "purge",
            show=False,  # the inspector's button says so where it applies: on a queue
            tooltip="purge the inspected queue: its ready messages are dropped (asks first)",
        ),
        Binding(
            "m", "publish", "publish", tooltip="publish your own message (key, headers, body, persistent)"
        ),
        Binding(
            "a", "animation", "anim", tooltip="animation on / off (off: tokens jump, for slow terminals)"
        ),
        Binding(
            "R", "restart_broker", "restart", tooltip="restart the broker (asks first where others use it)"
        ),
        Binding(
            "X",
            "restart_broker(True)",
            "crash",
            tooltip="crash the broker (kill -9) and start it again: brokers broker-sim started",
        ),
        Binding(
            "D", "drop_connection", "drop", tooltip="drop the client's connection: it reconnects by itself"
        ),
        Binding("P", "play_story", "play", tooltip="play this tab's story (its timeline) from the beginning"),
        Binding("p", "pause_story", "pause story", show=False, tooltip="pause / resume the story"),
        Binding(
            "less_than_sign",
            "story_speed(-1)",
            "slower",
            key_display="<",
            show=False,
            tooltip="story slower (0.25x 0.5x 1x 2x 4x 10x)",
        ),
        Binding(
            "greater_than_sign",
            "story_speed(1)",
            "faster",
            key_display=">",
            show=False,
            tooltip="story faster",
        ),
        Binding("S", "save_session", "save", tooltip="save this tab's session as a scenario file"),
        Binding(
            "V",
            "own_vhost",
            "vhost",
            show=False,  # the header's line offers it, only while routing is inferred
            tooltip="routing inferred: move the tabs to a vhost of broker-sim's own (asks first)",
        ),
        Binding("q", "quit", "quit", tooltip="stop the engines (they clean up) and quit"),
        *(
            Binding(str(n), f"show_tab({n - 1})", f"tab {n}", show=False, tooltip=f"pattern {n}")
            for n in range(1, 10)
        ),
        # with nine scenario tabs the Durability tab (always last) has no digit of its own
        Binding("0", "show_tab(-1)", "last tab", show=False, tooltip="the last tab (Durability)"),
        *(
            Binding(key, f"show_scenario('{name}')", name, show=False, tooltip=f"the {name.title()} tab")
            for name, key in LETTER_KEYS.items()
        ),
    ]

    def __init__(
        self,
        settings: Settings,
        scenarios: list[Scenario],
        *,
        live: bool = True,
        broker: BrokerHandle | None = None,
    ) -> None:
        super().__init__(css_path=[styles_dir() / name for name in STYLESHEETS])
        self.settings = settings
        self.scenarios = scenarios
        self.live = live
        self.tabs = [PatternTab(s, settings, live=live) for s in scenarios]
        self.broker: BrokerHandle | None = broker
        """The broker every engine runs on, once found or started (or the one given)."""
        self.header = BrokerHeader(settings)
        self.patterns = TabbedContent(id="patterns")
        """Held here: ``query_one`` from the app searches the screen on top (a dialog, say)."""
        self.durability = DurabilityTab(prefix=f"{settings.name_prefix}durability.")
        # its key: its number while that is one digit, else 0 (the last tab)
        key = len(self.tabs) + 1 if len(self.tabs) < 9 else 0
        labels = [
            f"{LETTER_KEYS.get(tab.scenario.name, str(i)) if i > 9 else i} {tab.scenario.title}"
            for i, tab in enumerate(self.tabs, 1)
        ]
        self.strip = TabStrip([*labels, f"{key} Durability"], id="tab-strip")
        """The tab bar (TabbedContent's own, one row that scrolls, is hidden)."""
        self._owns_broker = broker is None
        self._drafts: dict[str, Draft] = {}
        self._stopping = False
        self._restart: Worker[None] | None = None
        self._unmounted: dict[str, PatternTab | DurabilityTab] = {}
        """Pane id → the content not mounted yet (every tab but the first, at the start)."""
        self._mounts: dict[str, AwaitMount] = {}
        self.warmed_up = False
        """The work after the first frame is done: igraph orders the pictures, the help is loaded."""
        if settings.api_port is not None:
            desk = next((t for t in self.tabs if t.scenario.name == UPLOAD_SCENARIO), None)
            if desk is not None and desk.scenario.producers:
                desk.controller.upload_port = settings.api_port

    def compose(self) -> ComposeResult:
        """Header, one tab per scenario and the Durability tab last, footer.

        Only the first tab's content is in the first frame: the others are mounted right after
        it, one at a time (each is ~30 widgets, and all of them were three quarters of the time
        to the first frame), or at once when one is shown before its turn."""
        yield self.header
        yield self.strip
        contents: list[PatternTab | DurabilityTab] = [*self.tabs, self.durability]
        with self.patterns:
            panes = zip(contents, self.pane_ids, self.strip.labels, strict=True)
            for i, (content, pane, label) in enumerate(panes):
                with TabPane(label, id=pane):
                    if i == 0:
                        yield content
                    else:
                        self._unmounted[pane] = content
        yield Footer(compact=True)

    def _mount_pane(self, pane: str) -> AwaitMount | None:
        """Start mounting the tab's content into its pane unless it has started; None: it was
        there from the start."""
        content = self._unmounted.pop(pane, None)
        if content is not None:
            self._mounts[pane] = self.patterns.get_pane(pane).mount(content)
        return self._mounts.get(pane)

    @work(group="mount-tabs", exit_on_error=False)
    async def _mount_hidden_tabs(self) -> None:
        for pane in list(self._unmounted):
            if (mounting := self._mount_pane(pane)) is not None:
                await mounting
            await asyncio.sleep(MOUNT_PAUSE)  # a frame between two tabs: the screen keeps moving

    @property
    def pane_ids(self) -> list[str]:
        """Every tab's pane, in order (the patterns, then Durability)."""
        return [widget_id("pane-", t.scenario.name) for t in self.tabs] + [DURABILITY_PANE]

    def on_mount(self) -> None:
        """Show the first tab, find or start the broker (in a worker), keep the header current."""
        tune_collector()
        if self.tabs:
            self.tabs[0].activate()
        header = self.header
        if not self.live:
            header.recorded()
        elif self.broker is not None:
            self.post_message(BrokerChosen(BrokerChoice(self.broker)))
        else:
            # after the first frame: the engine's imports (~0.5 s, in a thread) take the GIL often
            # enough to hold the first paint back by about as much when they start before it
            self.call_after_refresh(self._choose_broker)
        self.set_interval(1 / HEADER_HZ, self._tick_header)
        self._update_header()
        self.call_after_refresh(self._warm_up)
        self.call_after_refresh(self._mount_hidden_tabs)

    @work(thread=True, group="warm-up", exit_on_error=False)
    def _warm_up(self) -> None:
        load_help()
        # igraph orders the diagrams' columns; the first frame was laid out without it
        warm_up_ordering()
        if self.live:
            load_engine()  # the broker worker may be loading it already: then this waits for it
        self.call_from_thread(self._warmed_up)

    def _warmed_up(self) -> None:
        self.warmed_up = True
        for tab in self.tabs:
            tab.canvas.redraw()
        # what lives as long as the app is loaded: full collections need not walk it again
        freeze_loaded()

    # -- the broker -------------------------------------------------------------------------------

    @work(group="broker", exit_on_error=False)
    async def _choose_broker(self) -> None:
        try:
            choice = await choose_broker(self.settings, self._say_progress)
        except (OSError, RuntimeError) as exc:
            self.post_message(BrokerFailed(in_words(exc, 300)))
            return
        self.post_message(BrokerChosen(choice))

    def _say_progress(self, words: str) -> None:
        self.post_message(BrokerProgress(words))

    @on(BrokerProgress)
    def _broker_progress(self, message: BrokerProgress) -> None:
        self.header.progress(message.words)

    @on(BrokerChosen)
    async def _broker_chosen(self, message: BrokerChosen) -> None:
        if self._stopping:  # quit while it was starting: stop it again
            if self._owns_broker:
                await message.choice.handle.close()
            return
        self.broker = message.choice.handle
        self.header.chosen(message.choice)
        for tab in self.tabs:
            tab.broker_ready(self.broker)
        self.durability.set_broker(self.broker)

    @on(BrokerFailed)
    def _broker_failed(self, message: BrokerFailed) -> None:
        self.header.failed(message.reason)
        for tab in self.tabs:
            tab.broker_failed(message.reason)

    @on(OwnVhostReady)
    def _own_vhost_ready(self, message: OwnVhostReady) -> None:
        # every engine, running or not yet started, goes to the new vhost: new ones take the handle's URL
        if self.broker is None:
            return
        self.broker.url = message.url
        self.header.moved(self.broker)
        move = functools.partial(_move_engine, url=message.url)
        for tab in self.tabs:
            if tab.controller.engine is not None:
                tab.control(move)
        self.notify(f"{message.done}; every tab reconnects there", title="vhost", timeout=6)

    # -- tabs -------------------------------------------------------------------------------------

    @property
    def active_tab(self) -> PatternTab | None:
        """The tab on screen."""
        active = self.patterns.active
        return next((t for t in self.tabs if widget_id("pane-", t.scenario.name) == active), None)

    @on(TabbedContent.TabActivated)
    async def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        if (mounting := self._mount_pane(self.patterns.active)) is not None:
            await mounting  # shown before its turn came
        self.refresh_bindings()  # the footer's keys depend on the tab
        if self.patterns.active in self.pane_ids:
            self.strip.show(self.pane_ids.index(self.patterns.active))
        shown = self.active_tab
        for tab in self.tabs:
            if tab is not shown:
                tab.deactivate()
        if shown is not None:
            shown.activate()
        self._update_header()

    @on(ViewChanged)
    def _view_changed(self, event: ViewChanged) -> None:
        if event.tab is self.active_tab:
            self._update_header()

    def _update_header(self) -> None:
        tab = self.active_tab
        header = self.header
        if tab is None:
            header.show(None)
        else:
            header.show(tab.view, tab.outage, time.monotonic())

    def _tick_header(self) -> None:
        # while the broker is away nothing else redraws: keep the elapsed time moving
        tab = self.active_tab
        if tab is not None and tab.outage.active and not self._stopping:
            with contextlib.suppress(NoMatches):  # the app is being torn down
                self._update_header()

    def _switch(self, step: int) -> None:
        panes = self.pane_ids
        if self.patterns.active in panes:
            self.patterns.active = panes[(panes.index(self.patterns.active) + step) % len(panes)]

    def action_show_tab(self, index: int) -> None:
        """Show the tab with that number."""
        if -len(self.pane_ids) <= index < len(self.pane_ids):  # -1: the last tab
            self.patterns.active = self.pane_ids[index]

    def action_show_scenario(self, name: str) -> None:
        """Show the tab of that scenario (a letter key's), if this run has it."""
        pane = widget_id("pane-", name)
        if pane in self.pane_ids:
            self.patterns.active = pane

    def action_next_tab(self) -> None:
        """Show the next pattern."""
        if self.screen is not self.screen_stack[0]:  # a dialog: Tab moves between its fields
            self.screen.focus_next()
            return
        self._switch(+1)

    def action_previous_tab(self) -> None:
        """Show the previous pattern."""
        if self.screen is not self.screen_stack[0]:
            self.screen.focus_previous()
            return
        self._switch(-1)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that act on a tab only work on the main screen (not under the help or the form)."""
        tab_actions = {
            "add_consumer", "remove_consumer", "next_group", "pause", "faster", "slower",
            "prefetch", "kill", "publish", "animation", "restart_broker", "drop_connection",
            "play_story", "pause_story", "story_speed", "save_session", "own_vhost", "select_station",
            "close_inspector",
        }  # fmt: skip
        if action in tab_actions and self.screen is not self.screen_stack[0]:
            return False
        # the Durability tab has keys of its own: hide the pattern keys there (R still restarts)
        return not (action in tab_actions - {"restart_broker"} and self.patterns.active == DURABILITY_PANE)

    # -- keys -------------------------------------------------------------------------------------

    def action_help(self) -> None:
        """Open the help screen (works whatever the broker does)."""
        # imported here: the help's Markdown widget (markdown-it, pygments) costs ~0.15 s, which the
        # first frame need not pay (a thread warms it up right after)
        from broker_sim.tui.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        tab = self.active_tab
        bindings = [b for b in self.BINDINGS if isinstance(b, Binding) and not b.key.isdigit()]
        bindings.append(Binding("1-9", "", "", tooltip="show tab 1…9"))
        bindings += [b for b in DurabilityTab.BINDINGS if isinstance(b, Binding)]
        self.push_screen(HelpScreen(bindings, tab.scenario if tab else None))

    def _group(self, tab: PatternTab) -> str | None:
        group = tab.canvas.selected_group
        if group is None:
            self.notify(f"{tab.scenario.title} has no consumers", severity="warning")
        return group

    def action_add_consumer(self) -> None:
        """One more consumer in the selected group."""
        if (tab := self.active_tab) and (group := self._group(tab)):
            tab.control(lambda e: e.add_consumer(group))

    def action_remove_consumer(self) -> None:
        """One consumer fewer in the selected group."""
        if (tab := self.active_tab) and (group := self._group(tab)):
            tab.control(lambda e: e.remove_consumer(group))

    def action_next_group(self) -> None:
        """Select the next consumer group."""
        if (tab := self.active_tab) and (group := tab.cycle_group()):
            self.notify(f"+ - f k now act on {group}", timeout=2)

    def action_pause(self) -> None:
        """Pause or resume this tab's producers."""
        if tab := self.active_tab:
            paused = not all(tab.view.paused.values()) if tab.view.paused else True
            tab.control(lambda e: e.pause() if paused else e.resume())

    def action_faster(self) -> None:
        """Double the publish rate."""
        if tab := self.active_tab:
            tab.scale_rates(2.0)

    def action_slower(self) -> None:
        """Halve the publish rate."""
        if tab := self.active_tab:
            tab.scale_rates(0.5)

    def action_prefetch(self) -> None:
        """Toggle the selected group's prefetch between 1 (fair dispatch) and unlimited."""
        if (tab := self.active_tab) and (group := self._group(tab)):
            new = 0 if tab.view.prefetch.get(group, 1) != 0 else 1
            words = "unlimited (round robin up front)" if new == 0 else "1 (fair dispatch)"
            tab.control(lambda e: e.set_prefetch(group, new), f"{group}: prefetch {words}")

    def action_kill(self) -> None:
        """Kill a busy consumer of the selected group mid-message."""
        if (tab := self.active_tab) and (group := self._group(tab)):
            tab.control(
                lambda e: e.kill_consumer(group), "killed {result}: its unacked messages go back to the queue"
            )

    def action_select_station(self, step: int) -> None:
        """Select the next / previous station in reading order and show it in the inspector."""
        if tab := self.active_tab:
            tab.select(step)

    def action_close_inspector(self) -> None:
        """Close the inspector."""
        if tab := self.active_tab:
            tab.close_inspector()

    def action_publish(self, exchange: str | None = None) -> None:
        """Open the publish-your-own form (on that exchange, from the inspector)."""
        if tab := self.active_tab:
            draft = self._drafts.setdefault(tab.scenario.name, Draft())
            inspected = tab.inspecting or ""
            if exchange is None and inspected.startswith("x:"):  # m on an inspected exchange
                exchange = inspected.removeprefix("x:")
            if exchange is not None:
                draft.exchange = exchange
            self.push_screen(PublishForm(tab.scenario, draft, tab.send))

    def action_purge(self, queue: str | None = None) -> None:
        """Purge the inspected queue (or ``queue``, from the inspector's button), after a yes."""
        if not (tab := self.active_tab):
            return
        inspected = tab.inspecting or ""
        if queue is None and inspected.startswith("q:"):
            queue = inspected.removeprefix("q:")
        if queue is None:
            self.notify("select a queue first (← → or a click): e purges the queue the inspector shows")
            return
        name = queue
        depth = tab.view.tally.depth.get(name)
        self.push_screen(
            ConfirmPurge(name, depth.ready if depth else None),
            lambda yes: (
                tab.control(lambda e: e.purge(name), f"{name}: purged {{result}} ready messages")
                if yes
                else None
            ),
        )

    def action_animation(self) -> None:
        """Animation on or off (off: tokens jump to where events put them)."""
        on_now = not (self.tabs[0].animate if self.tabs else True)
        for tab in self.tabs:
            tab.set_animation(on_now)
        self.notify(f"animation {'on' if on_now else 'off'}", timeout=2)

    def action_drop_connection(self) -> None:
        """A fault: drop this tab's connection to the broker; it reconnects by itself."""
        if tab := self.active_tab:
            tab.control(lambda e: e.drop_connection(), "dropped the connection: watch it reconnect")

    def action_restart_broker(self, crash: bool = False) -> None:
        """Restart (or crash and restart) the broker: ask first, or ask the user to do it.

        The active tab's engine does it (any running one, on the Durability tab); every other
        engine reconnects by itself.
        """
        tab, broker = self.active_tab, self.broker
        if tab is None or tab.controller.engine is None:
            tab = next((t for t in self.tabs if t.controller.engine is not None), tab)
        if tab is None or broker is None or tab.controller.engine is None:
            self.notify("no engine runs on a broker yet: nothing to restart", severity="warning")
            return
        if self._restart is not None and self._restart.is_running:
            self.notify("a restart is already under way", severity="warning")
            return
        if crash and not crash_allowed(broker):
            self.notify(
                f"only a broker broker-sim started can be crashed (this one: {broker.kind}); "
                "R restarts it cleanly",
                severity="warning",
            )
            return
        if not broker.can_restart:
            if not tab.view.connected:
                # waiting for it "to go away and come back" would wait for what already happened
                refused = tab.view.link is not None and tab.view.link.state == LinkState.AUTH_REFUSED
                self.notify(
                    "the broker refuses broker-sim's login: a restart will not change that"
                    if refused
                    else "the broker is already unreachable; broker-sim reconnects when it is back",
                    severity="warning",
                )
                return
            self.push_screen(ManualRestart(broker.masked_url, tab.outage))
        elif broker.needs_confirmation:
            screen = ConfirmRestart(broker.kind, broker.masked_url, broker.restart_how, crash=crash)
            self.push_screen(screen, lambda yes: self._restart_now(tab, crash) if yes else None)
        else:
            self._restart_now(tab, crash)

    def _restart_now(self, tab: PatternTab, crash: bool) -> None:
        self.notify(f"{'crashing' if crash else 'restarting'} the broker…", timeout=3)
        self._restart = self._restart_broker(tab, crash)

    @work(group="restart", exit_on_error=False)
    async def _restart_broker(self, tab: PatternTab, crash: bool) -> None:
        from broker_sim.sim import EngineError

        if tab.controller.engine is None:
            return
        try:
            seconds = await tab.controller.engine.restart_broker(crash=crash)
        except EngineError as exc:
            self.notify(str(exc), title="restart", severity="error", timeout=8)
            return
        self.notify(f"the broker is up again after {seconds:.1f} s; the engines reconnect", timeout=5)

    def action_own_vhost(self) -> None:
        """Offer a vhost of broker-sim's own, where routing is traced (asks first)."""
        self.header.offer.ask()

    def action_play_story(self) -> None:
        """Play this tab's story from the beginning (again, if it is playing)."""
        if tab := self.active_tab:
            tab.play_story()

    def action_pause_story(self) -> None:
        """Pause or resume this tab's story."""
        if tab := self.active_tab:
            tab.toggle_story_pause()

    def action_story_speed(self, step: int) -> None:
        """The story one step faster or slower."""
        if tab := self.active_tab:
            tab.story_speed(step)

    def action_save_session(self) -> None:
        """Save this tab's session as a scenario file."""
        if tab := self.active_tab:
            tab.save_session()

    async def action_quit(self) -> None:
        """Stop every engine (each removes what it declared), the broker we started, then leave."""
        if not self._stopping:
            self._stopping = True
            self.notify("stopping…", timeout=2)
            await self.stop_engines()
            await self.close_broker()
        self.exit()

    async def close_broker(self) -> None:
        """Stop the broker broker-sim started for this run (a given one belongs to the caller)."""
        broker, self.broker = self.broker, None
        if broker is not None and self._owns_broker:
            with contextlib.suppress(OSError, RuntimeError, TimeoutError):
                await asyncio.wait_for(broker.close(), STOP_GRACE * 2)

    async def stop_engines(self) -> None:
        """Stop every running engine, each within a grace period."""
        running = [t for t in self.tabs if t.controller.engine is not None]
        results = await asyncio.gather(
            *(asyncio.wait_for(t.stop_engine(), STOP_GRACE) for t in running), return_exceptions=True
        )
        del results  # a slow or failing stop must not keep the user in the app

    async def on_unmount(self) -> None:
        """Leaving by any other way than ``q`` (tests, ctrl+c): still stop the engines and the broker."""
        self._stopping = True
        with contextlib.suppress(Exception):
            await self.stop_engines()
        await self.close_broker()

    # -- errors -----------------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Any worker that failed unexpectedly: say so in words (never a traceback)."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            text = (str(error) or type(error).__name__).splitlines()[0][:200]
            self.notify(f"{event.worker.name or 'a task'} failed: {text}", severity="error", timeout=8)


async def _move_engine(engine: Engine, *, url: str) -> None:
    await engine.move_to(url)


def make_app(
    settings: Settings,
    *,
    scenarios: list[Scenario] | None = None,
    live: bool = True,
    broker: BrokerHandle | None = None,
) -> BrokerSimApp:
    """Build the app: the built-in scenarios plus ``settings.scenarios_dir``'s, or the ones given.

    The app finds or starts the broker ``settings.broker`` asks for (in a worker) and stops it on
    quit; a ``broker`` given here is used as is and left running (it belongs to the caller).
    ``live=False`` builds the view without engines; a recorded event stream is then fed into each
    tab with :meth:`PatternTab.feed` (snapshot tests). Raises ValueError, in one line, for a bad
    scenario file or folder.
    """
    if scenarios is None:
        try:
            scenarios = load_scenarios(builtin_scenarios_dir())
            if settings.scenarios_dir is not None:
                if not settings.scenarios_dir.is_dir():
                    raise ValueError(f"--scenarios {settings.scenarios_dir}: no such folder")
                scenarios += load_scenarios(settings.scenarios_dir)
        except ScenarioError as exc:
            raise ValueError(str(exc)) from None
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"two scenarios share the name {', '.join(twice)}: rename one (name = ...)")
    return BrokerSimApp(settings, scenarios, live=live, broker=broker)
