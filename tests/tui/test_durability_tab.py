"""The Durability tab with Pilot on private brokers: press the keys, then compare the table with
the counts the test takes straight from the broker on its own plain connection (passive declares).

These tests restart brokers, so every broker here is the test's own (never the shared RabbitMQ).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import aiormq
import pytest
from textual.app import App, ComposeResult
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Static

from broker_sim.broker.handle import BrokerHandle, EmbeddedHandle
from broker_sim.resources import styles_dir
from broker_sim.settings import Settings
from broker_sim.sim.durability import LAB_QUEUES, LabResult, LabRow
from broker_sim.sim.lab_runner import LabReport, LabRunner
from broker_sim.tui.app import make_app
from broker_sim.tui.durability_tab import MAX_COUNT, DurabilityTab, RestartConfirm
from tests.support import Conditions
from tests.tui.harness import until_screen

SIZE = (140, 40)
DEADLINE = 60.0
COUNT = 300


@dataclass
class Seen:
    """Every message the app posts, and a wait (with a deadline) until one of them matches."""

    messages: list[Message] = field(default_factory=list)
    conditions: Conditions = field(default_factory=Conditions)

    def __call__(self, message: Message) -> None:
        self.messages.append(message)
        self.conditions.check()

    async def until(self, predicate: Callable[[Message], bool], what: str, timeout: float = DEADLINE) -> None:
        """Wait until a posted message matches (or one already did)."""
        await self.conditions.until(lambda: any(predicate(m) for m in self.messages), what, timeout)


class LabApp(App[None]):
    """Just the tab, styled as the app styles it."""

    CSS_PATH = [styles_dir() / "durability.tcss"]

    def __init__(self, prefix: str = "t.durability.") -> None:
        super().__init__()
        self.tab = DurabilityTab(prefix=prefix)

    def compose(self) -> ComposeResult:
        """The tab alone."""
        yield self.tab


@contextlib.asynccontextmanager
async def lab_app(handle: BrokerHandle | None) -> AsyncIterator[tuple[LabApp, Pilot[None], Seen]]:
    """The tab on screen (given ``handle`` when there is one), every posted message recorded."""
    app, seen = LabApp(prefix=f"t{uuid.uuid4().hex[:6]}.durability."), Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        if handle is not None:
            app.tab.set_broker(handle)
        await pilot.pause()
        yield app, pilot, seen


async def set_count(pilot: Pilot[None], text: str) -> None:
    """Put N into the field (n focuses it; Enter leaves it when N is good, else Escape does)."""
    await pilot.press("n")
    field = pilot.app.query_one("#lab-count", Input)
    assert field.has_focus
    field.value = text
    await pilot.press("enter")
    if field.has_focus:
        await pilot.press("escape")
    await pilot.pause()
    assert not field.has_focus


async def finished(pilot: Pilot[None], seen: Seen) -> LabReport:
    """Wait for the run's Finished (or fail with its Failed text), then for the screen to show it."""
    await seen.until(
        lambda m: isinstance(m, DurabilityTab.Finished | DurabilityTab.Failed), "the lab run to end"
    )
    await pilot.pause()
    failed = [m.text for m in seen.messages if isinstance(m, DurabilityTab.Failed)]
    assert not failed, failed
    tab = pilot.app.query_one(DurabilityTab)
    assert tab.report is not None
    assert not tab.running
    return tab.report


@dataclass(frozen=True)
class Counted:
    """One queue as the broker reports it now."""

    depth: int | None  # None: the queue does not exist
    distinct: int


async def broker_counts(url: str, prefix: str) -> dict[str, Counted]:
    """The lab's queues counted straight from the broker: passive declares, ids read back."""
    conn = await aio_pika.connect(url, timeout=10)
    counts: dict[str, Counted] = {}
    try:
        for q in LAB_QUEUES:
            channel = await conn.channel()
            try:
                queue = await channel.declare_queue(prefix + q.name, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                counts[q.name] = Counted(None, 0)
                continue
            depth = queue.declaration_result.message_count
            ids = set()
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                ids.add(message.message_id)
            await channel.close()  # unacked gets go back to the queue
            counts[q.name] = Counted(depth, len(ids))
    finally:
        await conn.close()
    return counts


def assert_table_matches_broker(tab: DurabilityTab, counts: dict[str, Counted], n: int) -> None:
    """Every figure the table shows is the broker's own (or follows from it and N)."""
    for name, counted in counts.items():
        assert tab.cell(name, "published") == str(n), name
        assert tab.cell(name, "confirmed") == str(n), name
        assert tab.cell(name, "before") == str(n), name
        shown_after = "gone" if counted.depth is None else str(counted.depth)
        assert tab.cell(name, "after") == shown_after, name
        assert tab.cell(name, "lost") == str(n - counted.distinct), name
        assert tab.cell(name, "duplicated") == str((counted.depth or 0) - counted.distinct), name


def verdicts(tab: DurabilityTab) -> str:
    return str(tab.query_one("#lab-verdicts", Static).content)


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[EmbeddedHandle]:
    """An embedded broker of the test's own."""
    handle = EmbeddedHandle(tmp_path / "embedded")
    await handle.start()
    try:
        yield handle
    finally:
        await handle.close()


async def test_the_table_shows_the_brokers_own_counts_after_a_restart(private_broker: BrokerHandle) -> None:
    async with lab_app(private_broker) as (app, pilot, seen):
        await set_count(pilot, str(COUNT))
        await pilot.press("p")
        report = await finished(pilot, seen)
        counts = await broker_counts(private_broker.url, app.tab.prefix)
        print(
            f"\n{private_broker.kind}: restart {report.result.restart_seconds:.2f} s; "
            + ", ".join(f"{r.queue.name} lost {r.lost} dup {r.duplicated}" for r in report.result.rows)
        )
        assert counts["durable-persistent"] == Counted(COUNT, COUNT)
        assert counts["durable-transient"] == Counted(0, 0)
        assert counts["transient-queue"] == Counted(None, 0)
        assert_table_matches_broker(app.tab, counts, COUNT)
        assert "everything confirmed survived" in verdicts(app.tab)
        assert "non-durable queue is deleted" in verdicts(app.tab)
        assert "broker-sim restarted the broker" in verdicts(app.tab)
        assert any(isinstance(m, DurabilityTab.Progress) and m.step.phase == "restart" for m in seen.messages)


async def test_kill_9_of_the_embedded_broker_loses_no_confirmed_persistent_message(
    embedded: EmbeddedHandle,
) -> None:
    async with lab_app(embedded) as (app, pilot, seen):
        await set_count(pilot, str(COUNT))
        await pilot.press("x")
        report = await finished(pilot, seen)
        counts = await broker_counts(embedded.url, app.tab.prefix)
        assert report.result.crash
        assert counts["durable-persistent"] == Counted(COUNT, COUNT)
        assert_table_matches_broker(app.tab, counts, COUNT)
        assert "killed (kill -9)" in verdicts(app.tab)


async def test_a_broker_broker_sim_cannot_restart_is_restarted_by_hand_while_the_tab_waits(
    embedded: EmbeddedHandle,
) -> None:
    by_hand = BrokerHandle(embedded.url)  # a plain handle: broker-sim cannot restart it
    async with lab_app(by_hand) as (app, pilot, seen):
        assert not app.query_one("#lab-crash").display  # no kill -9 offered for such a broker
        await set_count(pilot, str(COUNT))
        await pilot.press("p")
        await seen.until(
            lambda m: isinstance(m, DurabilityTab.Progress) and "go down" in m.step.text,
            "the tab asking for a restart",
        )
        await pilot.pause()
        assert "Restart the broker now" in str(app.query_one("#lab-progress", Static).content)
        await embedded.restart()  # the "user" restarts it
        report = await finished(pilot, seen)
        counts = await broker_counts(embedded.url, app.tab.prefix)
        assert report.by_hand
        assert_table_matches_broker(app.tab, counts, COUNT)
        assert "you restarted the broker" in verdicts(app.tab)


async def test_escape_gives_up_waiting_for_a_restart(embedded: EmbeddedHandle) -> None:
    async with lab_app(BrokerHandle(embedded.url)) as (app, pilot, seen):
        await set_count(pilot, "10")
        await pilot.press("p")
        await seen.until(
            lambda m: isinstance(m, DurabilityTab.Progress) and m.step.phase == "await-user",
            "the tab asking for a restart",
        )
        await pilot.pause()
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.tab.running
        assert "stopped" in str(app.query_one("#lab-progress", Static).content)
        assert app.tab.report is None


class AsksFirst(BrokerHandle):
    """A broker others might share: broker-sim restarts it only after the user says yes."""

    def __init__(self, inner: EmbeddedHandle) -> None:
        super().__init__(inner.url, "shared-looking broker", False, "restart it (test)", True)
        self.inner = inner
        self.restarts = 0

    async def restart(self, *, crash: bool = False) -> None:
        self.restarts += 1
        await self.inner.restart(crash=crash)


async def test_enter_on_the_restart_question_cancels(embedded: EmbeddedHandle) -> None:
    handle = AsksFirst(embedded)
    async with lab_app(handle) as (app, pilot, _seen):
        await pilot.press("p")
        assert isinstance(app.screen, RestartConfirm)
        assert app.screen.focused is not None and app.screen.focused.id == "lab-confirm-no"
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, RestartConfirm)
        assert not app.tab.running and not app.workers and handle.restarts == 0


async def test_a_shared_broker_is_restarted_only_after_the_user_confirms(embedded: EmbeddedHandle) -> None:
    handle = AsksFirst(embedded)
    async with lab_app(handle) as (app, pilot, seen):
        assert not app.query_one("#lab-crash").display  # not started by broker-sim: no kill -9
        await set_count(pilot, "20")
        await pilot.press("p")
        assert isinstance(app.screen, RestartConfirm)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, RestartConfirm)
        assert not app.tab.running and handle.restarts == 0
        await pilot.press("p")
        await pilot.press("y")
        await finished(pilot, seen)
    assert handle.restarts == 1


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "2.5", str(MAX_COUNT + 1), ""])
async def test_a_bad_n_says_so_in_one_line_and_nothing_runs(bad: str) -> None:
    # nothing answers at port 1: if anything ran, it would fail loudly
    async with lab_app(BrokerHandle("amqp://guest:guest@127.0.0.1:1/")) as (app, pilot, seen):
        await set_count(pilot, bad)
        await pilot.press("p")
        await pilot.pause()
        error = str(app.query_one("#lab-error", Static).content)
        assert error == f"N must be a whole number from 1 to {MAX_COUNT:,} (messages per queue); got {bad!r}"
        assert "\n" not in error
        assert not app.tab.running
        assert not app.workers
        assert not any(isinstance(m, DurabilityTab.Progress) for m in seen.messages)


async def test_before_the_broker_is_known_the_tab_waits_for_it() -> None:
    async with lab_app(None) as (app, pilot, _seen):
        assert "waiting for the broker" in str(app.query_one("#lab-broker", Static).content)
        await pilot.press("p")
        await pilot.pause()
        assert not app.tab.running and not app.workers


async def test_a_refused_non_durable_queue_is_said_in_words(
    embedded: EmbeddedHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RabbitMQ 4.3+ refuses it by default; 3.10 and the embedded broker allow it, so the
    # probe's answer is stood in for here, and the rest of the run is real
    async def refuses(self: LabRunner, name: str) -> str:
        return "this broker refuses non-durable, non-exclusive queues (test)"

    monkeypatch.setattr(LabRunner, "_refuses_transient_queue", refuses)
    async with lab_app(embedded) as (app, pilot, seen):
        await set_count(pilot, "50")
        await pilot.press("p")
        report = await finished(pilot, seen)
        counts = await broker_counts(embedded.url, app.tab.prefix)
        assert [r.queue.name for r in report.result.rows] == ["durable-persistent", "durable-transient"]
        assert app.tab.cell("transient-queue", "published") == "refused"
        assert "refuses non-durable, non-exclusive queues" in verdicts(app.tab)
        assert counts["transient-queue"] == Counted(None, 0)  # never declared
        assert counts["durable-persistent"] == Counted(50, 50)


class FixedHandle(BrokerHandle):
    """A broker-sim-started broker at a fixed address, for a snapshot (it never restarts)."""

    def __init__(self) -> None:
        super().__init__(
            "amqp://broker-sim:secret@127.0.0.1:40000/", "embedded broker", True, "stop and start it"
        )

    async def restart(self, *, crash: bool = False) -> None:
        raise AssertionError("the snapshot never restarts")


def recorded_report() -> LabReport:
    """The figures of a kill -9 run on the embedded broker (test data for the view)."""
    persistent, transient, gone = LAB_QUEUES
    rows = [
        LabRow(persistent, 1000, 1000, 1000, 1000, 1000, True),
        LabRow(transient, 1000, 1000, 1000, 0, 0, True),
        LabRow(gone, 1000, 1000, 1000, None, 0, False),
    ]
    return LabReport(LabResult(rows, 0.42, crash=True))


def test_snapshot_of_the_before_after_table(snap_compare: object) -> None:
    async def show(pilot: Pilot[None]) -> None:
        tab = pilot.app.query_one(DurabilityTab)
        tab.set_broker(FixedHandle())
        tab.show_report(recorded_report())
        await pilot.pause()

    assert snap_compare(LabApp(), terminal_size=SIZE, run_before=show)  # type: ignore[operator]


def in_view(tab: DurabilityTab, selector: str) -> bool:
    """Whether a child of the tab is inside its scrolled window, top to bottom."""
    region = tab.query_one(selector).virtual_region
    top = tab.scroll_offset.y
    return top <= region.y and region.bottom <= top + tab.scrollable_content_region.height


async def test_at_80x24_the_tab_scrolls_and_a_finished_run_shows_the_table(tmp_path: Path) -> None:
    settings = Settings(broker="embedded", data_dir=tmp_path, name_prefix=f"t{uuid.uuid4().hex[:6]}.")
    app, seen = make_app(settings), Seen()
    async with app.run_test(size=(80, 24), message_hook=seen) as pilot:
        try:
            await pilot.press("0")  # the last tab
            tab = app.durability
            await seen.until(lambda _m: tab.handle is not None, "the broker known to the tab")
            await pilot.pause()
            assert tab.has_focus and tab.max_scroll_y > 0  # the table and verdicts are below
            for button in tab.query("#lab-controls Button").results(Button):
                if button.display:  # every button the tab offers is whole on screen
                    assert button.region.right <= 80, f"{button.label} ends at {button.region.right}"
            assert not in_view(tab, "#lab-table")
            await pilot.press("pagedown")
            assert tab.scroll_y > 0  # keys scroll it (the mouse wheel does too)
            await pilot.press("home")
            assert tab.scroll_y == 0
            await set_count(pilot, "20")
            await pilot.press("p")
            await finished(pilot, seen)
            await until_screen(pilot, lambda: in_view(tab, "#lab-table"), "the table scrolled into view")
            assert in_view(tab, "#lab-progress")
            table = tab.query_one("#lab-table", DataTable)
            assert table.row_count == 3
            # every column, "lost" and "dups" included, fits 80 columns: nothing to scroll sideways
            assert table.max_scroll_x == 0, f"{table.virtual_size.width} wide in {table.size.width}"
            await pilot.press("n")  # the form comes back into view for the next run
            await until_screen(pilot, lambda: in_view(tab, "#lab-controls"), "the N field scrolled into view")
        finally:
            await app.stop_engines()
            await app.close_broker()
