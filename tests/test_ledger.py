"""The ledger joins a message's events: settled, lost, duplicated, latency — in bounded memory."""

from __future__ import annotations

import pytest

from broker_sim.domain import ledger as ledger_module
from broker_sim.domain.events import (
    Abandoned,
    Acked,
    Confirmed,
    ConnectionChanged,
    LinkState,
    Published,
    PublishFailed,
    QueueDepth,
    Returned,
    Routed,
    TracingChanged,
)
from broker_sim.domain.ledger import Ledger
from broker_sim.domain.report import Report, build_report, format_report
from broker_sim.domain.scenario import QueueSpec, Scenario
from broker_sim.domain.tally import Tally
from broker_sim.domain.timeline import Expectation


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def trip(ledger: Ledger, mid: str, queues: tuple[str, ...], acked: tuple[str, ...]) -> None:
    for event in (Published(mid, "p", "x", "k"), Confirmed(mid, "p"), Routed(mid, "x", "k", queues, "trace")):
        ledger(event)
    for q in acked:
        ledger(Acked(mid, q, "c", 1.0))


def test_a_message_settles_once_every_routed_queue_acked_it() -> None:
    ledger = Ledger()
    trip(ledger, "m1", ("a", "b"), ("a",))
    assert ledger.unsettled("b") == 1 and ledger.unsettled("a") == 0
    ledger(Acked("m1", "b", "c", 1.0))
    assert ledger.open == {} and not ledger.duplicates


def test_an_ack_after_settling_is_a_duplicate() -> None:
    ledger = Ledger()
    trip(ledger, "m1", ("a",), ("a", "a"))
    ledger(Acked("m1", "a", "c", 1.0))
    assert ledger.duplicates["a"] == 2


def test_returned_and_auto_ack_losses() -> None:
    ledger = Ledger()
    ledger(Published("r", "p", "x", "nope"))
    ledger(Returned("r", "p", "x", "nope", "NO_ROUTE"))
    trip(ledger, "m", ("q",), ())
    ledger(Abandoned("m", "q", "c", redelivered=False))
    assert ledger.open == {} and ledger.lost_on_delivery["q"] == 1


def test_the_duplicate_window_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "DUPLICATE_WINDOW", 3)
    ledger = Ledger()
    for i in range(10):
        trip(ledger, f"m{i}", ("q",), ("q",))
    assert list(ledger.acks_seen) == [("m7", "q"), ("m8", "q"), ("m9", "q")]
    ledger(Acked("m9", "q", "c", 1.0))  # still remembered: a duplicate
    ledger(Acked("m0", "q", "c", 1.0))  # fell out of the window: no longer known
    assert ledger.duplicates["q"] == 1


def test_a_trace_arriving_after_the_first_ack_is_waited_for() -> None:
    # Seen in a pub/sub run: the second queue's ack was counted as a duplicate because the
    # message had settled on the first ack, before the broker's trace named both queues.
    ledger = Ledger()
    ledger(TracingChanged(True, "on"))
    ledger(Published("m", "p", "logs", ""))
    ledger(Confirmed("m", "p"))
    ledger(Acked("m", "screen", "c1", 1.0))
    assert ledger.unsettled("file") == 0 and "m" in ledger.open
    ledger(Routed("m", "logs", "", ("screen", "file"), "trace"))
    assert ledger.unsettled("file") == 1
    ledger(Acked("m", "file", "c2", 1.0))
    assert ledger.open == {} and not ledger.duplicates


def test_untraced_fanout_acks_in_several_queues_are_not_duplicates() -> None:
    ledger = Ledger()
    ledger(TracingChanged(False, "off"))
    ledger(Published("m", "p", "logs", ""))
    ledger(Confirmed("m", "p"))
    for queue in ("screen", "file", "screen"):
        ledger(Acked("m", queue, "c", 1.0))
    assert ledger.open == {} and ledger.duplicates == {"screen": 1}


def test_latency_percentiles_from_publish_to_ack() -> None:
    clock = Clock()
    ledger = Ledger(clock=clock)
    for i in range(100):
        clock.now = float(i)
        ledger(Published(f"m{i}", "p", "x", "k"))
        clock.now = i + (i + 1) / 1000  # m{i} takes (i + 1) ms
        ledger(Acked(f"m{i}", "q", "c", 1.0))
    assert ledger.latency_percentile(50) is not None
    assert round(ledger.latency_percentile(50) or 0) == 51
    assert round(ledger.latency_percentile(99) or 0) == 99


def test_report_counts_lost_as_routed_but_neither_acked_nor_waiting() -> None:
    scenario = Scenario(
        "s",
        "S",
        queues=(QueueSpec("q"),),
        expectations=(Expectation("lost", equals=0), Expectation("acked", queue="q", at_least=1)),
    )
    tally, ledger = Tally(), Ledger()

    def both(event: object) -> None:
        tally(event)  # type: ignore[arg-type]
        ledger(event)  # type: ignore[arg-type]

    for i in range(5):
        for event in (
            Published(f"m{i}", "p", "x", "k"),
            Confirmed(f"m{i}", "p"),
            Routed(f"m{i}", "x", "k", ("q",), "trace"),
        ):
            both(event)
    both(Acked("m0", "q", "c", 1.0))
    both(QueueDepth("q", ready=3, unacked=0, consumers=1))
    report = build_report(scenario, tally, ledger)
    assert report.queues["q"].lost == 1  # 4 unacked, 3 still waiting in the queue
    assert [v.passed for v in report.verdicts] == [False, True]


def test_a_republished_copy_of_an_acked_message_is_a_duplicate_and_settles() -> None:
    ledger = Ledger()
    ledger(TracingChanged(True, "on"))
    trip(ledger, "m", ("q",), ("q",))  # processed; its confirm was lost in a broker restart
    trip(ledger, "m", ("q",), ("q",))  # so the producer published it again, and it was processed again
    assert ledger.open == {} and ledger.duplicates["q"] == 1 and ledger.unsettled("q") == 0


def test_messages_waiting_for_a_lost_trace_are_bounded_and_let_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "TRACE_WAIT", 3)
    ledger = Ledger()
    ledger(TracingChanged(True, "on"))
    for i in range(5):  # acked, but the trace queue overflowed: no Routed ever comes
        ledger(Published(f"m{i}", "p", "x", "k"))
        ledger(Confirmed(f"m{i}", "p"))
        ledger(Acked(f"m{i}", "q", "c", 1.0))
    assert list(ledger.open) == ["m2", "m3", "m4"] == list(ledger.awaiting_trace)
    ledger(ConnectionChanged(LinkState.LOST, "amqp://x@h/", "gone"))  # the trace queue went with it
    assert ledger.open == {} and not ledger.awaiting_trace


def test_tracing_turned_off_settles_what_waited_for_a_trace() -> None:
    ledger = Ledger()
    ledger(TracingChanged(True, "on"))
    ledger(Published("m", "p", "x", "k"))
    ledger(Acked("m", "q", "c", 1.0))
    assert "m" in ledger.open
    ledger(TracingChanged(False, "off after a restart"))
    assert ledger.open == {} and not ledger.duplicates


def _report(events: list[object], queues: tuple[str, ...] = ("q",), ready: int = 0) -> Report:
    scenario = Scenario("s", "S", queues=tuple(QueueSpec(q) for q in queues))
    tally, ledger = Tally(), Ledger()
    for event in [*events, *(QueueDepth(q, ready=ready, unacked=0, consumers=1) for q in queues)]:
        tally(event)  # type: ignore[arg-type]
        ledger(event)  # type: ignore[arg-type]
    return build_report(scenario, tally, ledger)


TRACED = TracingChanged(True, "on")
LOST = ConnectionChanged(LinkState.LOST, "amqp://x@h/", "gone")


@pytest.mark.parametrize(("mandatory", "lost", "unknown"), [(True, 1, 0), (False, 0, 1)])
def test_a_confirmed_message_whose_trace_never_came_and_never_acked_is_counted(
    mandatory: bool, lost: int, unknown: int
) -> None:
    # Its trace died with the observer's connection in a restart; no queue ever acked it.
    events = [TRACED, Published("m", "p", "x", "k", mandatory=mandatory), Confirmed("m", "p"), LOST]
    report = _report(events)
    # Mandatory and not returned: it reached a queue, none has it now: lost. Otherwise it may
    # have been dropped unroutable: its routing is unknown. Never silently nothing.
    assert (report.lost, report.routing_unknown) == (lost, unknown)


def test_a_message_still_waiting_in_a_queue_is_neither_lost_nor_unknown() -> None:
    events = [TRACED, Published("m", "p", "x", "k", mandatory=True), Confirmed("m", "p"), LOST]
    report = _report(events, ready=1)
    assert (report.lost, report.routing_unknown) == (0, 0)


def test_a_fanout_message_acked_by_one_queue_before_its_trace_was_lost_is_routing_unknown() -> None:
    events = [
        TRACED,
        Published("m", "p", "logs", ""),
        Confirmed("m", "p"),
        Acked("m", "screen", "c", 1.0),
        LOST,
    ]
    report = _report(events, queues=("screen", "file"))
    assert (report.lost, report.routing_unknown) == (0, 1)  # not settled as if "file" had it


def test_a_message_published_before_a_loss_and_acked_after_is_routing_unknown() -> None:
    ledger = Ledger()
    for event in (TRACED, Published("m", "p", "x", "k"), Confirmed("m", "p"), LOST, TRACED):
        ledger(event)
    ledger(Acked("m", "q", "c", 1.0))  # its trace went with the old trace queue: it cannot come
    assert ledger.open == {} and ledger.routing_unknown == 1 and not ledger.awaiting_trace


def test_a_refused_publish_is_nacked_not_lost() -> None:
    events = [
        TRACED,
        Published("m", "p", "x", "k", mandatory=True),
        PublishFailed("m", "p", "the broker refused it", refused=True),
        Published("u", "p", "x", "k", mandatory=True),
        PublishFailed("u", "p", "not confirmed: the connection closed"),  # republished later
    ]
    report = _report(events)
    assert (report.publish_nacked, report.lost, report.routing_unknown, report.delivered) == (1, 0, 0, 0)


def test_the_open_ledger_is_bounded_and_counts_what_fell_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "OPEN_LIMIT", 3)
    ledger = Ledger()
    for i in range(5):  # never acked: a TTL dropped them, or nobody consumes the queue
        ledger(Published(f"m{i}", "p", "x", "k"))
        if i != 1:
            ledger(Confirmed(f"m{i}", "p"))
    assert list(ledger.open) == ["m2", "m3", "m4"]
    assert ledger.untracked == 1  # m0 was confirmed; m1 never was


def _figures(routing_unknown: int, untracked: int) -> Report:
    return Report(
        scenario="s",
        published=10,
        confirmed=10,
        returned=0,
        publish_failed=0,
        delivered=10,
        acked=10,
        nacked=0,
        redelivered=0,
        lost=0,
        duplicates=0,
        routing="traced",
        latency_p50_ms=None,
        latency_p99_ms=None,
        routing_unknown=routing_unknown,
        untracked=untracked,
    )


def test_the_report_shows_routing_unknown_and_untracked_only_when_not_zero() -> None:
    shown = format_report("t", _figures(routing_unknown=3, untracked=2))
    assert "routing unknown 3 (acked or dropped where no trace said which queues)" in shown
    assert "untracked 2 (past the ledger's bound)" in shown
    quiet = format_report("t", _figures(routing_unknown=0, untracked=0))
    assert "routing unknown" not in quiet and "untracked" not in quiet
