"""The app: a header, one tab per scenario, the footer; keys go to the tab on show.

:func:`make_app` is the one way to build it, for the CLI and for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from broker_sim.domain.scenario import Scenario
from broker_sim.domain.scenario_file import ScenarioError, load_scenarios
from broker_sim.resources import builtin_scenarios_dir, styles_dir
from broker_sim.settings import Settings
from broker_sim.tui.header import BrokerHeader
from broker_sim.tui.help import HelpScreen
from broker_sim.tui.pattern_tab import PatternTab, ViewChanged
from broker_sim.tui.publish_form import Draft, PublishForm

STOP_GRACE = 5.0
"""Seconds each engine gets to clean up on quit before the app leaves anyway."""
STYLESHEETS = ("app.tcss", "flow.tcss", "forms.tcss")


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
        Binding("up", "faster", "faster", key_display="↑", tooltip="double the publish rate"),
        Binding("down", "slower", "slower", key_display="↓", tooltip="halve the publish rate"),
        Binding("f", "prefetch", "prefetch", tooltip="prefetch 1 (fair dispatch) / unlimited (round robin)"),
        Binding("k", "kill", "kill", tooltip="kill a busy consumer mid-job: its job is redelivered"),
        Binding(
            "m", "publish", "publish", tooltip="publish your own message (key, headers, body, persistent)"
        ),
        Binding(
            "a", "animation", "anim", tooltip="animation on / off (off: tokens jump, for slow terminals)"
        ),
        Binding("q", "quit", "quit", tooltip="stop the engines (they clean up) and quit"),
        *(
            Binding(str(n), f"show_tab({n - 1})", f"tab {n}", show=False, tooltip=f"pattern {n}")
            for n in range(1, 10)
        ),
    ]

    def __init__(self, settings: Settings, scenarios: list[Scenario], *, live: bool = True) -> None:
        super().__init__(css_path=[styles_dir() / name for name in STYLESHEETS])
        self.settings = settings
        self.scenarios = scenarios
        self.live = live
        self.tabs = [PatternTab(s, settings, live=live) for s in scenarios]
        self._drafts: dict[str, Draft] = {}
        self._stopping = False

    def compose(self) -> ComposeResult:
        """Header, one tab per scenario, footer."""
        yield BrokerHeader(self.settings)
        with TabbedContent(id="patterns"):
            for i, tab in enumerate(self.tabs, 1):
                with TabPane(f"{i} {tab.scenario.title}", id=f"pane-{tab.scenario.name}"):
                    yield tab
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Show the first tab's state in the header, and keep it current."""
        if self.tabs:
            self.tabs[0].activate()
        self._update_header()

    # -- tabs -------------------------------------------------------------------------------------

    @property
    def active_tab(self) -> PatternTab | None:
        """The tab on screen."""
        active = self.query_one(TabbedContent).active
        return next((t for t in self.tabs if f"pane-{t.scenario.name}" == active), None)

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
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
        self.query_one(BrokerHeader).show(tab.view if tab else None)

    def _switch(self, step: int) -> None:
        tab = self.active_tab
        if not self.tabs or tab is None:
            return
        nxt = self.tabs[(self.tabs.index(tab) + step) % len(self.tabs)]
        self.query_one(TabbedContent).active = f"pane-{nxt.scenario.name}"

    def action_show_tab(self, index: int) -> None:
        """Show the pattern with that number."""
        if 0 <= index < len(self.tabs):
            self.query_one(TabbedContent).active = f"pane-{self.tabs[index].scenario.name}"

    def action_next_tab(self) -> None:
        """Show the next pattern."""
        if isinstance(self.screen, HelpScreen | PublishForm):
            self.screen.focus_next()
            return
        self._switch(+1)

    def action_previous_tab(self) -> None:
        """Show the previous pattern."""
        if isinstance(self.screen, HelpScreen | PublishForm):
            self.screen.focus_previous()
            return
        self._switch(-1)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that act on a tab only work on the main screen (not under the help or the form)."""
        tab_actions = {
            "add_consumer", "remove_consumer", "next_group", "pause", "faster", "slower",
            "prefetch", "kill", "publish", "animation",
        }  # fmt: skip
        return not (action in tab_actions and self.screen is not self.screen_stack[0])

    # -- keys -------------------------------------------------------------------------------------

    def action_help(self) -> None:
        """Open the help screen (works whatever the broker does)."""
        if isinstance(self.screen, HelpScreen):
            return
        tab = self.active_tab
        bindings = [b for b in self.BINDINGS if isinstance(b, Binding) and not b.key.isdigit()]
        bindings.append(Binding("1-9", "", "", tooltip="show pattern 1…9"))
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

    def action_publish(self) -> None:
        """Open the publish-your-own form."""
        if tab := self.active_tab:
            draft = self._drafts.setdefault(tab.scenario.name, Draft())
            self.push_screen(PublishForm(tab.scenario, draft, tab.send))

    def action_animation(self) -> None:
        """Animation on or off (off: tokens jump to where events put them)."""
        on_now = not (self.tabs[0].animate if self.tabs else True)
        for tab in self.tabs:
            tab.set_animation(on_now)
        self.notify(f"animation {'on' if on_now else 'off'}", timeout=2)

    async def action_quit(self) -> None:
        """Stop every engine (each removes what it declared), then leave."""
        if not self._stopping:
            self._stopping = True
            self.notify("stopping…", timeout=2)
            await self.stop_engines()
        self.exit()

    async def stop_engines(self) -> None:
        """Stop every running engine, each within a grace period."""
        running = [t for t in self.tabs if t.engine is not None]
        results = await asyncio.gather(
            *(asyncio.wait_for(t.stop_engine(), STOP_GRACE) for t in running), return_exceptions=True
        )
        del results  # a slow or failing stop must not keep the user in the app

    async def on_unmount(self) -> None:
        """Leaving by any other way than ``q`` (tests, ctrl+c): still stop the engines."""
        with contextlib.suppress(Exception):
            await self.stop_engines()

    # -- errors -----------------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Any worker that failed unexpectedly: say so in words (never a traceback)."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            text = (str(error) or type(error).__name__).splitlines()[0][:200]
            self.notify(f"{event.worker.name or 'a task'} failed: {text}", severity="error", timeout=8)


def make_app(
    settings: Settings, *, scenarios: list[Scenario] | None = None, live: bool = True
) -> BrokerSimApp:
    """Build the app: the built-in scenarios plus ``settings.scenarios_dir``'s, or the ones given.

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
    return BrokerSimApp(settings, scenarios, live=live)
