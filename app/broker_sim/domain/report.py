"""The end-of-run report: figures per queue and consumer, and the expectations checked on them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from broker_sim.domain.ledger import Ledger
from broker_sim.domain.scenario import DIRECT_REPLY_TO, Scenario
from broker_sim.domain.tally import Tally
from broker_sim.domain.timeline import Expectation


@dataclass
class QueueFigures:
    """What one queue saw."""

    routed: int
    delivered: int
    acked: int
    redelivered: int
    ready_at_end: int | None
    lost: int
    duplicates: int
    purged: int = 0
    overtook: int = 0
    """Messages delivered ahead of a lower-priority one published before them."""


@dataclass
class Verdict:
    """One expectation and whether it held."""

    expectation: str
    value: int
    passed: bool


@dataclass
class Report:
    """A whole run's figures."""

    scenario: str
    published: int
    confirmed: int
    returned: int
    publish_failed: int
    delivered: int
    acked: int
    nacked: int
    redelivered: int
    lost: int
    duplicates: int
    routing: str
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    routing_unknown: int = 0
    """Confirmed messages whose queues cannot be told (no trace), so neither lost nor acked everywhere."""
    publish_nacked: int = 0
    """Publishes the broker refused (Basic.Nack): counted here, never as lost or delivered."""
    unanswered: int = 0
    """RPC requests whose answer never came back matched to them."""
    untracked: int = 0
    """Confirmed messages the ledger let go unsettled (its bound); 0 unless a run is huge."""
    purged: int = 0
    """Ready messages a user purged: gone on purpose, never counted as lost."""
    queues: dict[str, QueueFigures] = field(default_factory=dict)
    consumers: dict[str, dict[str, int | str]] = field(default_factory=dict)
    producers: dict[str, dict[str, int]] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return all(v.passed for v in self.verdicts)

    def as_dict(self) -> dict[str, object]:
        """Plain data, for ``--json``."""
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def value_of(self, e: Expectation) -> int:
        """The measured value an expectation is about."""
        if e.consumer:
            fig = self.consumers.get(e.consumer, {})
            return int(fig.get(e.metric, 0))
        if e.producer:
            return self.producers.get(e.producer, {}).get(e.metric, 0)
        if e.queue:
            q = self.queues.get(e.queue)
            return int(getattr(q, e.metric, 0)) if q is not None else 0
        return int(getattr(self, e.metric, 0))


def build_report(scenario: Scenario, tally: Tally, ledger: Ledger) -> Report:
    """Join the tally and the ledger into a report, then check the scenario's expectations."""
    queues: dict[str, QueueFigures] = {}
    redelivered_per_queue: dict[str, int] = {}
    for fig in tally.consumers.values():
        redelivered_per_queue[fig.queue] = redelivered_per_queue.get(fig.queue, 0) + fig.redelivered
    names = [q.name for q in scenario.queues]
    if any(p.direct_reply for p in scenario.producers):
        names.append(DIRECT_REPLY_TO)  # where direct reply-to's answers are delivered from
    for name in names:
        depth = tally.depth.get(name)
        ready = depth.ready if depth is not None else None
        # Lost: routed here and confirmed, never acked here, and neither waiting in the queue nor
        # purged from it (a purge says how many went, not which).
        accounted = (ready or 0) + ledger.purged[name]
        lost = max(0, ledger.unsettled(name) - accounted) + ledger.lost_on_delivery[name]
        queues[name] = QueueFigures(
            routed=tally.routed[name],
            delivered=tally.delivered_per_queue[name],
            acked=tally.acked_per_queue[name],
            redelivered=redelivered_per_queue.get(name, 0),
            ready_at_end=ready,
            lost=lost,
            duplicates=ledger.duplicates[name],
            purged=ledger.purged[name],
            overtook=tally.order.overtook[name],
        )
    # Messages still waiting in (or purged from) a queue beyond what is known to be routed there
    # may be the ones whose routing is unknown: they are waiting or purged, not lost.
    spare = sum(
        max(0, (q.ready_at_end or 0) + q.purged - ledger.unsettled(name)) for name, q in queues.items()
    )
    mandatory = ledger.unaccounted(mandatory=True)
    lost_untraced = max(0, mandatory - spare)
    spare = max(0, spare - mandatory)
    unknown = max(0, ledger.unaccounted(mandatory=False) - spare)
    report = Report(
        scenario=scenario.name,
        published=tally.published,
        confirmed=tally.confirmed,
        returned=tally.returned,
        publish_failed=tally.publish_failed,
        delivered=tally.delivered,
        acked=tally.acked,
        nacked=tally.nacked,
        redelivered=tally.redelivered,
        lost=sum(q.lost for q in queues.values()) + lost_untraced,
        duplicates=sum(ledger.duplicates.values()),
        routing="traced"
        if tally.routed_traced and not tally.routed_inferred
        else "inferred"
        if tally.routed_inferred
        else "none seen",
        routing_unknown=ledger.routing_unknown + ledger.awaiting() + unknown,
        publish_nacked=ledger.publish_nacked,
        unanswered=tally.unanswered,
        untracked=ledger.untracked,
        purged=sum(ledger.purged.values()),
        latency_p50_ms=ledger.latency_percentile(50),
        latency_p99_ms=ledger.latency_percentile(99),
        queues=queues,
        consumers={
            name: {
                "queue": f.queue,
                "delivered": f.delivered,
                "acked": f.acked,
                "redelivered": f.redelivered,
                "nacked": f.nacked,
            }
            for name, f in sorted(tally.consumers.items())
        },
        producers={
            name: {
                "published": f.published,
                "confirmed": f.confirmed,
                "returned": f.returned,
                "publish_nacked": f.publish_nacked,
                "outstanding": f.outstanding,
                "max_outstanding": f.max_outstanding,
                "unanswered": f.unanswered,
            }
            for name, f in sorted(tally.producers.items())
        },
    )
    report.verdicts = [
        Verdict(e.describe(), report.value_of(e), e.holds(report.value_of(e))) for e in scenario.expectations
    ]
    return report


def format_report(title: str, report: Report) -> str:
    """The report as text for a terminal."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f} ms"

    lines = [
        f"{title}",
        f"  published {report.published}, confirmed {report.confirmed}, returned {report.returned}, "
        f"failed {report.publish_failed}",
        f"  delivered {report.delivered}, acked {report.acked}, nacked {report.nacked}, "
        f"redelivered {report.redelivered}, lost {report.lost}, duplicates {report.duplicates}",
    ]
    unusual = [
        f"routing unknown {report.routing_unknown} (acked or dropped where no trace said which queues)"
        if report.routing_unknown
        else "",
        f"refused by the broker {report.publish_nacked} (Basic.Nack)" if report.publish_nacked else "",
        f"untracked {report.untracked} (past the ledger's bound)" if report.untracked else "",
        f"purged {report.purged} (dropped on purpose, not lost)" if report.purged else "",
        f"unanswered {report.unanswered} (RPC requests with no matched reply)" if report.unanswered else "",
    ]
    lines += [f"  {'; '.join(u for u in unusual if u)}"] if any(unusual) else []
    lines += [
        f"  routing {report.routing}; latency publish→ack p50 {ms(report.latency_p50_ms)}, "
        f"p99 {ms(report.latency_p99_ms)}",
    ]
    for name, q in report.queues.items():
        ready = "?" if q.ready_at_end is None else q.ready_at_end
        lines.append(
            f"  queue {name}: routed {q.routed}, delivered {q.delivered}, acked {q.acked}, "
            f"redelivered {q.redelivered}, ready {ready}, lost {q.lost}, duplicates {q.duplicates}"
            + (f", overtook {q.overtook}" if q.overtook else "")
        )
    for name, p in report.producers.items():
        lines.append(
            f"  producer {name}: published {p['published']}, confirmed {p['confirmed']}, "
            f"at most {p['max_outstanding']} awaiting a confirm at once"
        )
    for name, c in report.consumers.items():
        lines.append(
            f"  consumer {name} ({c['queue']}): delivered {c['delivered']}, acked {c['acked']}, "
            f"redelivered {c['redelivered']}"
        )
    if report.verdicts:
        lines.append("  expectations:")
        lines.extend(
            f"    {'PASS' if v.passed else 'FAIL'} {v.expectation} (got {v.value})" for v in report.verdicts
        )
    return "\n".join(lines)
