"""The Durability tab: publish to three kinds of queue, restart the broker, count the survivors.

Users misread durability all the time: a durable queue fed transient messages, a persistent
message in a non-durable queue, a publish never confirmed. This tab puts the three side by side
and shows the broker's own counts before and after a restart, with a verdict in plain words.

The broker work lives in :mod:`broker_sim.sim.lab_runner` (it imports ``aio_pika``, which the UI
may not): it is imported inside the worker, in a thread, so it never delays the first frame.
The worker reports back with messages; only their handlers change the widgets.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.validation import Integer
from textual.widgets import Button, DataTable, Input, Label, Static

from broker_sim.broker.handle import BrokerHandle
from broker_sim.tui.lazy import load_engine
from broker_sim.tui.restart import Question, YesNoScreen

if TYPE_CHECKING:
    from broker_sim.sim.durability import LabRow
    from broker_sim.sim.lab_runner import LabReport, LabStep

DEFAULT_COUNT = 1000
MAX_COUNT = 100_000
"""More than this takes minutes to publish (aio-pika does ~1.5k msg/s here) and proves nothing new."""
DEFAULT_PREFIX = "broker-sim.durability."
TICK = 0.25
"""Seconds between redraws of the elapsed time while a run goes."""

STORY = (
    "Three things keep a message across a broker restart, and all three are needed: the queue must "
    "be durable (its definition is kept), the message must be persistent (delivery mode 2: it is "
    "written to disk), and the publish must be confirmed (the broker took responsibility for it). "
    "This lab publishes N messages with confirms into three queues side by side — a durable queue "
    "fed persistent messages, a durable queue fed transient messages, and a non-durable queue fed "
    "persistent messages — restarts the broker, then counts what is left on a plain connection with "
    "passive declares (a robust connection would re-declare a lost queue and show it present and empty)."
)
# Short enough for the whole table to fit 80 columns; the verdicts under it use the long labels.
COLUMNS = (
    ("queue", "queue + messages"),
    ("published", "published"),
    ("confirmed", "confirmed"),
    ("before", "before"),
    ("after", "after"),
    ("lost", "lost"),
    ("duplicated", "dups"),
)
ROW_LABELS = {
    "durable-persistent": "durable queue, persistent messages",
    "durable-transient": "durable queue, transient messages",
    "transient-queue": "non-durable queue, persistent messages",
}
"""The lab's queues in the order shown (the engine's LAB_QUEUES, known here without importing it)."""
TABLE_LABELS = {
    "durable-persistent": "durable + persistent",
    "durable-transient": "durable + transient",
    "transient-queue": "non-durable + persistent",
}


def crash_allowed(handle: BrokerHandle) -> bool:
    """Whether the tab offers kill -9: only on a broker broker-sim started and restarts itself
    (embedded broker, private node, throwaway container), never on one others may share."""
    return handle.can_restart and handle.started_by_us


class RestartConfirm(YesNoScreen):
    """Asks before restarting a broker others may use (the machine's node, a compose container)."""

    PREFIX = "lab-confirm"

    def __init__(self, handle: BrokerHandle) -> None:
        super().__init__(
            Question(
                f"Restart the {handle.kind}?",
                f"{handle.masked_url}\n\nbroker-sim would {handle.restart_how}. Other programs "
                "using this broker lose their connections for a few seconds, and every transient "
                "message and non-durable queue on it is gone afterwards.",
                "restart it (y)",
                "cancel (Enter / n)",
            )
        )
        self.handle = handle


class DurabilityTab(VerticalScroll):
    """The durability lab: N per queue, publish + restart (or kill -9), the before/after table.

    The app calls :meth:`set_broker` once it knows the broker; until then the tab says it is
    waiting. Keys (``BINDINGS``, with tooltips for the help screen) act while focus is in the tab;
    the tab takes the focus when it is shown. The tab scrolls (PageDown, ↓, the mouse wheel): on
    a small terminal the table and verdicts are below the story, so a finished run scrolls them
    into view, and focusing N (``n``) scrolls the form back.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "p",
            "run",
            "publish+restart",
            tooltip="durability: publish N to each queue with confirms, restart the broker, count survivors",
        ),
        Binding(
            "x",
            "crash",
            "kill -9",
            tooltip="durability: the same with kill -9 (only a broker broker-sim started)",
        ),
        Binding("n", "edit_count", "N", tooltip="durability: type N, the messages per queue (Enter: done)"),
        Binding("escape", "stop", "stop", tooltip="durability: stop waiting for the restart (the way out)"),
        Binding("d", "delete_queues", "delete queues", tooltip="durability: delete the lab's queues"),
    ]

    can_focus = True

    class Progress(Message):
        """A lab run moved on (publishing, restarting, waiting for the user, counting)."""

        def __init__(self, step: LabStep) -> None:
            super().__init__()
            self.step = step

    class Finished(Message):
        """A lab run is done: its figures."""

        def __init__(self, report: LabReport) -> None:
            super().__init__()
            self.report = report

    class Failed(Message):
        """A lab run failed; ``text`` says why in words."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(
        self, *, prefix: str = DEFAULT_PREFIX, count: int = DEFAULT_COUNT, id: str = "tab-durability"
    ) -> None:
        super().__init__(id=id)
        self.prefix = prefix
        self.default_count = count
        self.handle: BrokerHandle | None = None
        self.report: LabReport | None = None
        self.running = False
        self.phase = ""
        self.phase_text = ""
        self._crash = False
        self._started = 0.0
        self._phase_started = 0.0
        self._ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        """The story, the broker, the controls, the progress line, the table and the verdicts."""
        yield Static(STORY, id="lab-story")
        yield Static("waiting for the broker…", id="lab-broker")
        with Horizontal(id="lab-controls"):
            yield Label("N per queue", id="lab-count-label")  # short: the buttons fit 80 columns
            yield Input(
                str(self.default_count),
                id="lab-count",
                validators=[Integer(minimum=1, maximum=MAX_COUNT)],
                validate_on=["submitted"],
            )
            yield Button("publish + restart (p)", id="lab-run", variant="primary")
            yield Button("publish + kill -9 (x)", id="lab-crash", variant="warning")
            yield Button("stop waiting (esc)", id="lab-stop", variant="error")
        yield Static("", id="lab-error")
        yield Static("", id="lab-progress")
        yield DataTable(id="lab-table", cursor_type="none", zebra_stripes=True, show_cursor=False)
        yield Static("", id="lab-verdicts")

    def on_mount(self) -> None:
        """Columns, and the controls as the broker (or its absence) allows."""
        table = self.query_one("#lab-table", DataTable)
        table.can_focus = False
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self._show_broker()
        self._show_state()

    def on_show(self) -> None:
        """Shown (its tab selected): take the focus so the tab's keys work."""
        if not self.has_focus_within:
            self.focus()

    # -- the app's side ---------------------------------------------------------------------------

    def set_broker(self, handle: BrokerHandle) -> None:
        """The broker the lab runs against (the app calls this once it knows; again if it changes)."""
        self.handle = handle
        if self.is_mounted:
            self._show_broker()
            self._show_state()

    def show_report(self, report: LabReport) -> None:
        """Fill the table and verdicts from a finished run (the worker's result; snapshot tests)."""
        self.report = report
        table = self.query_one("#lab-table", DataTable)
        table.clear()
        rows = {row.queue.name: row for row in report.result.rows}
        for name, label in TABLE_LABELS.items():
            if name in rows:
                table.add_row(label, *_figures(rows[name]), key=name)
            elif name in report.refused:
                table.add_row(label, "refused", "—", "—", "—", "—", "—", key=name)
        self.query_one("#lab-verdicts", Static).update(self._verdicts(report))

    def cell(self, queue: str, column: str) -> str:
        """The text the table shows for one lab queue and column (tests read the screen with it)."""
        return str(self.query_one("#lab-table", DataTable).get_cell(queue, column))

    # -- keys -------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """kill -9 only where the broker allows a crash; stop only while a run goes."""
        if action == "crash":
            return self.handle is None or crash_allowed(self.handle)
        if action == "stop":
            return self.running or self.query_one("#lab-count", Input).has_focus
        return True

    def action_run(self) -> None:
        """Publish N to each queue, restart the broker, count survivors."""
        self._begin(crash=False)

    def action_crash(self) -> None:
        """The same with kill -9."""
        self._begin(crash=True)

    def action_edit_count(self) -> None:
        """Put the cursor in the N field."""
        self.query_one("#lab-count", Input).focus()

    def action_stop(self) -> None:
        """Leave the N field, or stop the run (the lab's queues stay until the next run)."""
        field = self.query_one("#lab-count", Input)
        if field.has_focus:
            self.focus()
            return
        if not self.running:
            return
        self.workers.cancel_group(self, "durability-lab")
        self.running = False
        self._say_progress(
            "stopped: nothing was counted; the lab's queues stay on the broker until the next run "
            "(d deletes them)"
        )
        self._show_state()

    def action_delete_queues(self) -> None:
        """Delete the lab's queues from the broker."""
        if self.handle is None:
            self.notify("no broker yet", severity="warning")
        elif self.running:
            self.notify("a lab run is going: esc stops it first", severity="warning")
        else:
            self._delete_queues(self.handle)

    @on(Button.Pressed, "#lab-run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#lab-crash")
    def _crash_pressed(self) -> None:
        self.action_crash()

    @on(Button.Pressed, "#lab-stop")
    def _stop_pressed(self) -> None:
        self.action_stop()

    @on(Input.Submitted, "#lab-count")
    def _count_submitted(self) -> None:
        if self._count() is not None:
            self.focus()

    # -- a run ------------------------------------------------------------------------------------

    def _count(self) -> int | None:
        """N from the field, or None after saying (in one line) what is wrong with it."""
        field = self.query_one("#lab-count", Input)
        value = field.value.strip()
        checked = field.validate(value)
        if checked is not None and not checked.is_valid:
            self._say_error(
                f"N must be a whole number from 1 to {MAX_COUNT:,} (messages per queue); got {value!r}"
            )
            return None
        self._say_error("")
        return int(value)

    def _begin(self, *, crash: bool) -> None:
        count = self._count()
        if count is None:
            return
        handle = self.handle
        if handle is None:
            self.notify("the broker is not known yet: the lab starts once it is", severity="warning")
            return
        if self.running:
            self.notify("a lab run is going: esc stops it", severity="warning")
            return
        if crash and not crash_allowed(handle):
            self.notify(
                f"kill -9 is only for a broker broker-sim started itself; this is the {handle.kind}",
                severity="warning",
            )
            return
        if handle.can_restart and handle.needs_confirmation:
            self.app.push_screen(
                RestartConfirm(handle), lambda yes: self._start(handle, count, crash) if yes else None
            )
            return
        self._start(handle, count, crash)

    def _start(self, handle: BrokerHandle, count: int, crash: bool) -> None:
        self.running = True
        self._crash = crash
        self._started = self._phase_started = time.monotonic()
        self.phase, self.phase_text = "publish", "connecting to the broker"
        # the last run's figures would read as this run's while it goes
        self.report = None
        self.query_one("#lab-table", DataTable).clear()
        self.query_one("#lab-verdicts", Static).update("")
        self._show_state()
        self._tick()
        self._ticker = self.set_interval(TICK, self._tick)
        self.scroll_to_widget(self.query_one("#lab-progress"), animate=False)
        self._run_lab(handle, count, crash)

    def _lab_step(self, step: LabStep) -> None:
        self.post_message(self.Progress(step))

    @work(exclusive=True, group="durability-lab", exit_on_error=False)
    async def _run_lab(self, handle: BrokerHandle, count: int, crash: bool) -> None:
        # imported in a thread: aio_pika takes ~0.3 s to import, which must not freeze the screen
        await asyncio.to_thread(load_engine)
        from broker_sim.sim.lab_runner import LabRunner, describe_failure

        runner = LabRunner(handle, prefix=self.prefix, on_step=self._lab_step)
        try:
            if handle.can_restart:
                report = await runner.run(count, crash=crash)
            else:
                report = await runner.run_by_hand(count)
        except Exception as exc:
            # every failure is shown in words, never as a traceback; esc's cancellation is a
            # BaseException and passes through to the worker
            self.post_message(self.Failed(describe_failure(handle.url, exc)))
            return
        self.post_message(self.Finished(report))

    @work(exclusive=True, group="durability-lab", exit_on_error=False)
    async def _delete_queues(self, handle: BrokerHandle) -> None:
        await asyncio.to_thread(load_engine)
        from broker_sim.sim.lab_runner import LabRunner, describe_failure

        try:
            await LabRunner(handle, prefix=self.prefix, on_step=lambda _: None).cleanup()
        except Exception as exc:  # shown in words
            self.post_message(self.Failed(describe_failure(handle.url, exc)))
            return
        self.notify("the lab's queues are deleted", timeout=3)

    @on(Progress)
    def _on_progress(self, message: Progress) -> None:
        message.stop()
        if not self.running:
            return
        if message.step.phase != self.phase or message.step.phase == "await-user":
            # the wait for the user is timed per step: "going down", then "answering again"
            self._phase_started = time.monotonic()
        self.phase, self.phase_text = message.step.phase, message.step.text
        self._tick()

    @on(Finished)
    def _on_finished(self, message: Finished) -> None:
        self._stop_ticker()
        self.running = False
        self.show_report(message.report)
        took = time.monotonic() - self._started
        self._say_progress(f"done in {took:.1f} s: the broker's own counts are below")
        self._show_state()
        # once the new rows are laid out: the progress line at the top, the table and verdicts under it
        self.call_after_refresh(self._scroll_to_results)

    def _scroll_to_results(self) -> None:
        self.scroll_to_widget(self.query_one("#lab-progress"), top=True, animate=False)

    @on(Failed)
    def _on_failed(self, message: Failed) -> None:
        self._stop_ticker()
        self.running = False
        self._say_progress(f"the lab run failed: {message.text}")
        self._show_state()
        self.scroll_to_widget(self.query_one("#lab-progress"), animate=False)
        self.notify(message.text, title="durability lab", severity="error", timeout=8)

    # -- drawing ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        if not self.running:
            return
        now = time.monotonic()
        if self.phase == "await-user" and self.handle is not None:
            self._say_progress(
                f"Restart the broker now ({self.handle.masked_url}) — {self.phase_text}… "
                f"{now - self._phase_started:.0f} s  (esc or 'stop waiting' gives up)",
                style="bold",
            )
            return
        self._say_progress(f"{self.phase_text}…  {now - self._started:.1f} s")

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _say_progress(self, text: str, style: str = "") -> None:
        self.query_one("#lab-progress", Static).update(Text(text, style=style))

    def _say_error(self, text: str) -> None:
        line = self.query_one("#lab-error", Static)
        line.update(text)
        line.display = bool(text)

    def _show_broker(self) -> None:
        line = self.query_one("#lab-broker", Static)
        handle = self.handle
        if handle is None:
            line.update("waiting for the broker…")
            return
        if handle.can_restart:
            how = f"restart: {handle.restart_how}"
        else:
            how = "broker-sim cannot restart it: after publishing, it asks you to restart it and waits"
        line.update(
            Text.assemble(("broker ", "dim"), f"{handle.kind} at {handle.masked_url}  ", (how, "dim"))
        )

    def _show_state(self) -> None:
        ready = self.handle is not None and not self.running
        self.query_one("#lab-run", Button).disabled = not ready
        crash = self.query_one("#lab-crash", Button)
        crash.display = self.handle is not None and crash_allowed(self.handle)
        crash.disabled = not ready
        self.query_one("#lab-stop", Button).display = self.running
        if self.handle is not None and not self.handle.can_restart:
            self.query_one("#lab-run", Button).label = "publish, then you restart (p)"
        else:
            self.query_one("#lab-run", Button).label = "publish + restart (p)"
        self.refresh_bindings()

    def _verdicts(self, report: LabReport) -> Text:
        text = Text()
        rows = {row.queue.name: row for row in report.result.rows}
        for name, label in ROW_LABELS.items():
            if name in rows:
                text.append(f"{label}: ", "bold").append(rows[name].verdict() + "\n")
            elif name in report.refused:
                text.append(f"{label}: ", "bold").append(report.refused[name] + "\n")
        result = report.result
        if report.by_hand:
            how = "you restarted the broker; it answered again"
            took = f"{result.restart_seconds:.1f} s after it went down"
        else:
            how = "broker-sim " + ("killed (kill -9) and started" if result.crash else "restarted")
            took = f"the broker; it answered again after {result.restart_seconds:.1f} s"
        text.append(f"\nrestart: {how} {took}", "dim")
        return text


def _figures(row: LabRow) -> tuple[str, ...]:
    after = "gone" if row.after is None else str(row.after)  # the verdict under the table says why
    before = "—" if row.before is None else str(row.before)
    return (
        str(row.published),
        str(row.confirmed),
        before,
        after,
        str(row.lost),
        str(row.duplicated),
    )
