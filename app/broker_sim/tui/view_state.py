"""What one scenario tab knows: folded from flow events only, with no Textual and no network.

The tab's widgets draw from this; tests (snapshots) feed it a recorded event stream directly.
All numbers come from :class:`Tally`, the same counter the engine's tests and the headless report
use, so a figure on screen is the figure the engine reported.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from broker_sim.domain.events import (
    Abandoned,
    Acked,
    ConnectionChanged,
    ConsumerDown,
    ConsumerUp,
    Delivered,
    EngineProblem,
    FlowEvent,
    Leftover,
    LinkState,
    Nacked,
    PrefetchChanged,
    ProducerState,
    Published,
    PublishFailed,
    Purged,
    Returned,
    Routed,
    TracingChanged,
)
from broker_sim.domain.scenario import DEFAULT_WINDOW, Scenario
from broker_sim.domain.tally import Tally
from broker_sim.layout.from_scenario import MANUAL, exchange_label
from broker_sim.tui.tokens import TokenField

RECENT = 6
"""Messages remembered per station for the inspector."""
RATE_WINDOW = 5
"""Seconds a station's rate is averaged over: steady enough to read, recent enough to follow."""
HISTORY = 60
"""Seconds of rate history kept for the sparkline."""
CONFIRM_SECONDS = 3
"""Seconds a producer's measured confirm rate is averaged over: steady, yet quick to follow ↑/↓."""
LOG_LINES = 200
PREVIEWS = 500


@dataclass(frozen=True)
class LogLine:
    """One line of the event log: what happened, and how to colour it."""

    kind: str
    text: str


class RateMeter:
    """Messages per second per name, from running totals sampled once a second (the last few)."""

    def __init__(self) -> None:
        self._samples: deque[dict[str, int]] = deque(maxlen=RATE_WINDOW + 1)

    def sample(self, totals: Mapping[str, int]) -> None:
        """Record the totals now (called once a second)."""
        self._samples.append(dict(totals))

    def rate(self, name: str) -> float | None:
        """Messages per second over the window, or None before two samples."""
        if len(self._samples) < 2:
            return None
        first, last = self._samples[0], self._samples[-1]
        return (last.get(name, 0) - first.get(name, 0)) / (len(self._samples) - 1)


def short_id(message_id: str) -> str:
    """A message id as a user reads it: ``main-server#17`` rather than ``3f2a9c1b.main-server.17``."""
    parts = message_id.split(".")
    if len(parts) >= 3:
        return f"{'.'.join(parts[1:-1])}#{parts[-1]}"
    return message_id


class ScenarioView:
    """The state behind one tab: counts, tokens, log, rates, link and consumer roster."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.tally = Tally()
        self.tokens = TokenField()
        self.log: deque[LogLine] = deque(maxlen=LOG_LINES)
        self.unseen_log: list[LogLine] = []
        self.link: ConnectionChanged | None = None
        self.tracing: TracingChanged | None = None
        self.problem: str = ""
        self.rates: dict[str, float] = {p.name: p.rate for p in scenario.producers}
        self.paused: dict[str, bool] = {p.name: False for p in scenario.producers}
        self.held: dict[str, bool] = {p.name: False for p in scenario.producers}
        self.blocked: dict[str, str] = {}
        """The broker's reason per producer while it blocks publishing (a memory or disk alarm)."""
        """Producers a story holds (paused, or over): they publish nothing, whatever their rate."""
        self.prefetch: dict[str, int] = {g.name: g.prefetch for g in scenario.consumers}
        self.roster: dict[str, list[str]] = {g.name: [] for g in scenario.consumers}
        """Consumer names per group, in the order they came up (drawn in that order)."""
        self.fallen: dict[str, str] = {}
        """Consumers killed or lost, and why: drawn greyed until the group has a new member."""
        self.last_key: dict[str, str] = {}
        """The routing key (or headers) of each producer's latest message: the edge's label."""
        self.acked_history: deque[int] = deque([0] * HISTORY, maxlen=HISTORY)
        self.published_history: deque[int] = deque([0] * HISTORY, maxlen=HISTORY)
        self._last_counts = (0, 0)
        self.run_id = ""
        """This run's id, once the engine said a queue held an earlier run's messages."""
        self.leftover: dict[str, int] = {}
        """Messages each queue held from an earlier run when this run started."""
        self.previews: dict[str, str] = {}
        """Body previews of recent messages: what a log server stored, shown in its box."""
        self.recent: dict[str, deque[FlowEvent]] = {}
        """The latest events at each station (by layout node id, consumers as ``c:NAME``): what
        the inspector lists as the last messages through it."""
        self.last_acked_by: dict[str, str] = {}
        """Per consumer group, its consumer that acked last: its job is the group's latest."""
        self.queue_in, self.queue_out = RateMeter(), RateMeter()
        """Per queue: routed into it, delivered from it (the inspector's engine rates)."""
        self.consumer_in, self.consumer_out = RateMeter(), RateMeter()
        """Per consumer: delivered to it, acked or rejected by it."""
        self.manual_exchanges: tuple[str, ...] = ()
        """Exchanges the engine reported a message typed by hand (``✎ you``) published to: the
        only ones the picture draws an arrow to from ``✎ you``."""
        self.confirm_history: dict[str, deque[int]] = {
            p.name: deque(maxlen=CONFIRM_SECONDS) for p in scenario.producers if p.confirm
        }
        """Confirms per second of the producers whose confirm mode a scenario sets (measured)."""
        self._confirmed_before: dict[str, int] = {}

    # -- events -----------------------------------------------------------------------------------

    def apply(self, events: list[FlowEvent], *, counted: bool = False) -> None:
        """Fold a batch of events in, in order (``counted``: the tally has them already)."""
        for event in events:
            if not counted:
                self.tally(event)
            self.tokens.apply(event)
            self._note(event)
            self._remember(event)

    def _remember(self, event: FlowEvent) -> None:
        match event:
            case Published(producer=p, exchange=x) | Returned(producer=p, exchange=x):
                stations: tuple[str, ...] = (f"p:{p}", f"x:{x}")
            case Routed(exchange=x, queues=queues):
                stations = (f"x:{x}", *(f"q:{q}" for q in queues))
            case Delivered(queue=q, consumer=c):
                stations = (f"q:{q}", f"c:{c}")
            case Acked(consumer=c) | Nacked(consumer=c):
                stations = (f"c:{c}",)
            case _:
                return
        for station in stations:
            line = self.recent.get(station)
            if line is None:
                line = self.recent[station] = deque(maxlen=RECENT)
            line.append(event)

    def _sampled(self, message_id: str) -> bool:
        # only messages that have a token are logged hop by hop, so the log keeps up at any rate
        return message_id in self.tokens._by_id

    def stopped(self, producer: str) -> str:
        """Why a producer publishes nothing whatever its rate ("blocked: …", "paused", "held"), or ""."""
        if reason := self.blocked.get(producer):
            return f"blocked: {reason}"
        return "paused" if self.paused.get(producer) else "held" if self.held.get(producer) else ""

    def label_of(self, message_id: str) -> str:
        """A message id as the log shows it, marked when an earlier run published it."""
        if self.run_id and not message_id.startswith(f"{self.run_id}."):
            return f"{short_id(message_id)} (earlier run)"
        return short_id(message_id)

    def _fate_of_rejected(self, queue: str, reason: str) -> str:
        """Where a job rejected without requeue goes: parked, dead-lettered, or nowhere."""
        if "parked" in reason:  # the consumer published it to the parking lot and acked it
            return "to the parking lot"
        spec = self.scenario.queue(queue)
        if spec is not None and spec.dead_letter_exchange is not None:
            return f"dead-lettered to {exchange_label(spec.dead_letter_exchange)}"
        return "dropped"

    def _say(self, kind: str, text: str) -> None:
        line = LogLine(kind, text)
        self.log.append(line)
        self.unseen_log.append(line)

    def _note(self, event: FlowEvent) -> None:
        match event:
            case Published(message_id=mid, producer=p, exchange=x, routing_key=key, headers=headers):
                label = _headers_text(headers) if headers else key or "(no key)"
                self.last_key[p] = label
                if p == MANUAL and x not in self.manual_exchanges:
                    self.manual_exchanges += (x,)
                self.previews[mid] = event.body_preview
                if len(self.previews) > PREVIEWS:
                    del self.previews[next(iter(self.previews))]
                if self._sampled(mid):
                    prio = "" if event.priority is None else f"  priority {event.priority}"
                    self._say("publish", f"{self.label_of(mid)}  {p} → {exchange_label(x)}  {label}{prio}")
            case Returned(message_id=mid, exchange=x, routing_key=key, reply_text=why):
                kind = self.scenario.exchange_type(x)
                # a headers exchange ignores the routing key, a fanout one has nothing to match
                unmatched = {"headers": "no binding matched its headers", "fanout": "no queue is bound"}
                what = unmatched.get(kind, f"no queue matched {key!r}")
                self._say("returned", f"{self.label_of(mid)}  {exchange_label(x)} ↩ returned: {what} ({why})")
            case PublishFailed(message_id=mid, reason=why):
                self._say("failed", f"{self.label_of(mid)}  publish failed: {why}")
            case Routed(message_id=mid, exchange=x, queues=queues, source=source):
                if self._sampled(mid) and queues:
                    how = "broker trace" if source == "trace" else "INFERRED from delivery"
                    self._say(
                        "inferred" if source == "inferred" else "routed",
                        f"{self.label_of(mid)}  {exchange_label(x)} → {', '.join(queues)}  ({how})",
                    )
            case Delivered(message_id=mid, queue=q, consumer=c, redelivered=again):
                if again:
                    self._say("redelivered", f"{self.label_of(mid)}  {q} → {c}  REDELIVERED")
                elif self._sampled(mid):
                    self._say("delivered", f"{self.label_of(mid)}  {q} → {c}")
            case Acked(message_id=mid, consumer=c, work_ms=ms, result=result):
                if (fig := self.tally.consumers.get(c)) is not None:
                    self.last_acked_by[fig.group] = c
                if self._sampled(mid):
                    self._say("acked", f"{self.label_of(mid)}  {c} ✓ {result or 'done'} in {ms:.0f} ms")
            case Nacked(message_id=mid, consumer=c, queue=q, requeue=requeue, reason=why):
                back = "back to the queue" if requeue else self._fate_of_rejected(q, why)
                self._say("nacked", f"{self.label_of(mid)}  {c} ✖ rejected ({why or 'no reason'}), {back}")
            case Abandoned(message_id=mid, consumer=c, queue=q, redelivered=again):
                fate = f"back to {q}, will be redelivered" if again else "LOST (auto-ack)"
                self._say("abandoned", f"{self.label_of(mid)}  {c} died holding it: {fate}")
            case ConsumerUp(consumer=c, group=g, prefetch=n):
                if c not in self.roster.setdefault(g, []):
                    self.roster[g].append(c)
                for name in [n for n in self.fallen if n.startswith(f"{g}-")]:
                    del self.fallen[name]  # a new member takes the fallen one's place
                self._say("consumer", f"{c} up on {event.queue} (prefetch {n or 'unlimited'})")
            case ConsumerDown(consumer=c, group=g, reason=why):
                if c in self.roster.get(g, []):
                    self.roster[g].remove(c)
                if why in ("killed", "connection lost"):
                    self.fallen[c] = why
                self._say("consumer-down", f"{c} down: {why}")
            case PrefetchChanged(group=g, prefetch=n):
                self.prefetch[g] = n
                rule = {1: "1: fair dispatch", 0: "unlimited: round robin up front"}.get(n, str(n))
                self._say("consumer", f"{g}: prefetch {rule}")
            case ProducerState(producer=p, rate=rate, paused=paused, held=held, blocked=blocked):
                self.rates[p], self.paused[p], self.held[p] = rate, paused, held
                if blocked != self.blocked.get(p, ""):
                    self._say(
                        "link", f"{p}: blocked by the broker: {blocked}" if blocked else f"{p}: unblocked"
                    )
                self.blocked[p] = blocked
            case ConnectionChanged(state=state, detail=detail):
                again = self.link is not None and (self.link.state, self.link.detail) == (state, detail)
                self.link = event
                if state in (LinkState.LOST, LinkState.CLOSED):
                    self.roster = {g: [] for g in self.roster}
                if state not in (LinkState.CONNECTING, LinkState.RECONNECTING) and not again:
                    self._say("link", f"broker {state}: {detail}")
            case TracingChanged():
                self.tracing = event
                self._say("link", f"routing {'traced' if event.traced else 'INFERRED'}: {event.detail}")
            case Leftover(queue=q, messages=n, run_id=run_id):
                self.run_id = run_id
                self.leftover[q] = n
                self._say(
                    "link",
                    f"{q} already held {n} message{'s' * (n != 1)} from an earlier run: they are "
                    "delivered too, so delivered can exceed published",
                )
            case Purged(queue=q, messages=n):
                self._say("purged", f"{q} purged: {n} ready message{'s' * (n != 1)} dropped (not lost)")
            case EngineProblem(text=text):
                self.problem = text
                self._say("failed", text)
            case _:
                pass

    # -- time -------------------------------------------------------------------------------------

    def sample_rates(self) -> None:
        """Close one second of the rate history (called once a second while live)."""
        published, acked = self.tally.published, self.tally.acked
        self.published_history.append(published - self._last_counts[0])
        self.acked_history.append(acked - self._last_counts[1])
        self._last_counts = (published, acked)
        self.tokens.set_rate(self.published_history[-1])
        tally = self.tally
        self.queue_in.sample(tally.routed)
        self.queue_out.sample(tally.delivered_per_queue)
        self.consumer_in.sample({c: f.delivered for c, f in tally.consumers.items()})
        self.consumer_out.sample({c: f.acked + f.nacked for c, f in tally.consumers.items()})
        for name, history in self.confirm_history.items():
            fig = self.tally.producers.get(name)
            confirmed = fig.confirmed if fig is not None else 0
            history.append(confirmed - self._confirmed_before.get(name, 0))
            self._confirmed_before[name] = confirmed

    def producer_detail(self, name: str) -> list[str]:
        """A producer box's detail row (widest first) when it says more than its key, else [].

        A producer with a confirm mode shows the confirms measured per second and how it waits;
        a direct reply-to client the answers it matched and the last round trip.
        """
        spec = next((p for p in self.scenario.producers if p.name == name), None)
        if spec is None:
            return []
        if spec.confirm:
            history = self.confirm_history.get(name) or (0,)
            rate = f"{sum(history) / len(history):.0f}/s"
            window = spec.window or DEFAULT_WINDOW
            how = {
                "single": "one at a time",
                "window": f"windows of {window}",
                "async": f"≤{window} unconfirmed",
            }
            brief = {"single": "1 by 1", "window": f"win {window}", "async": f"≤{window}"}
            return [
                f"confirmed {rate} · {how[spec.confirm]}",
                f"✓{rate} · {brief[spec.confirm]}",
                f"✓{rate} {brief[spec.confirm]}",
                f"✓{rate}",
            ]
        if spec.direct_reply:
            fig = self.tally.consumers.get(name)
            answers = fig.acked if fig is not None else 0
            _, after, took = (fig.last_result if fig is not None else "").partition(" after ")
            last = f" · last {took}" if after else ""
            return [
                f"direct reply-to · {answers} answers{last}",
                f"{answers} answers{last}",
                f"↩{answers}{last}",
                f"↩{answers} · {took}" if after else f"↩{answers}",
                f"↩{answers}",
            ]
        return []

    def drain_log(self) -> list[LogLine]:
        """Log lines not yet shown."""
        lines, self.unseen_log = self.unseen_log, []
        return lines

    @property
    def traced(self) -> bool | None:
        """True when routing comes from the broker's trace, False when inferred, None before we know."""
        return None if self.tracing is None else self.tracing.traced

    @property
    def connected(self) -> bool:
        """True while the engine runs on a live connection."""
        return self.link is not None and self.link.state in (LinkState.CONNECTED, LinkState.BACK)


def _headers_text(headers: dict[str, str | int | float | bool]) -> str:
    return " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in headers.items())
