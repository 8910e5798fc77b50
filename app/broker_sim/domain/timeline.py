"""A scenario's story over time: steps at given seconds, and what must hold at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from broker_sim.domain.scenario import HeaderValue

Action = Literal[
    "scale",
    "kill",
    "prefetch",
    "restart-broker",
    "drop-connection",
    "burst",
    "publish",
    "pause",
    "resume",
    "rate",
]
AT_END = frozenset({"lost", "unanswered", "outstanding"})
"""Metrics only known once the messages in flight have settled: checked when a run ends."""
ACTIONS: tuple[str, ...] = get_args(Action)

STEP_FIELDS: dict[str, set[str]] = {  # the fields each action takes
    "scale": {"group", "count"},
    "kill": {"group", "consumer"},
    "prefetch": {"group", "prefetch"},
    "restart-broker": {"crash"},
    "drop-connection": set(),
    "burst": {"producer", "count"},
    "publish": {"exchange", "routing_key", "body", "headers", "persistent"},
    "pause": {"producer"},
    "resume": {"producer"},
    "rate": {"producer", "rate"},
}
STEP_REQUIRED: dict[str, set[str]] = {
    "scale": {"group", "count"},
    "kill": {"group"},
    "prefetch": {"group", "prefetch"},
    "burst": {"producer", "count"},
    "publish": {"exchange"},
    "rate": {"producer", "rate"},
}

Metric = Literal[
    "published",
    "confirmed",
    "returned",
    "publish_failed",
    "routed",
    "delivered",
    "acked",
    "nacked",
    "redelivered",
    "lost",
    "duplicates",
    "routing_unknown",
    "publish_nacked",
    "overtook",
    "max_outstanding",
    "unanswered",
    "outstanding",
]
METRICS: tuple[str, ...] = get_args(Metric)
QUEUE_METRICS = frozenset({"routed", "delivered", "acked", "redelivered", "lost", "duplicates", "overtook"})
"""Metrics a queue has (``queue = …``). ``overtook``: messages delivered ahead of a lower-priority
one published before them (what a priority queue does to a backlog; a FIFO queue never does it)."""
CONSUMER_METRICS = frozenset({"delivered", "acked", "redelivered", "nacked"})
"""Metrics a consumer has (``consumer = …``)."""
PRODUCER_METRICS = frozenset(
    {"published", "confirmed", "returned", "publish_nacked", "outstanding", "max_outstanding", "unanswered"}
)
"""Metrics a producer has (``producer = …``). ``outstanding``: its publishes still awaiting the
broker's answer at the end (0: every one confirmed, returned or refused); ``max_outstanding``: the
most awaiting it at once (1 for confirms one at a time, at most the window otherwise);
``unanswered``: RPC requests whose answer never came back matched (also for the whole run)."""
RUN_METRICS = frozenset(METRICS) - {"routed", "overtook", "outstanding", "max_outstanding"}
"""Metrics of the whole run (no queue, consumer or producer): routing and order are per queue,
outstanding publishes per producer."""


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happens at ``at`` seconds into the run (scenario time, before speed-up).

    Which fields matter depends on ``action``: ``group`` for scale/kill/prefetch, ``producer``
    for burst/pause/resume/rate (none: every producer), ``count`` for scale and burst,
    ``prefetch``, ``rate``, and exchange/routing_key/body/headers/persistent for publish.
    """

    at: float
    action: Action
    group: str = ""
    producer: str = ""
    consumer: str = ""
    count: int = 0
    prefetch: int = 0
    rate: float = 0.0
    exchange: str = ""
    routing_key: str = ""
    body: str = ""
    headers: dict[str, HeaderValue] = field(default_factory=dict)
    persistent: bool = False
    crash: bool = False
    """restart-broker only: kill -9 the broker instead of stopping it cleanly."""

    def describe(self) -> str:
        """The step in a few words, for progress lines and the TUI."""
        who = self.group or self.producer or "all producers"
        match self.action:
            case "scale":
                return f"scale {self.group} to {self.count}"
            case "kill":
                return f"kill a {self.group} consumer" + (f" ({self.consumer})" if self.consumer else "")
            case "prefetch":
                return f"{self.group} prefetch {self.prefetch or 'unlimited'}"
            case "burst":
                return f"burst of {self.count} from {self.producer}"
            case "publish":
                return f"publish one to {self.exchange or '(default)'} key {self.routing_key!r}"
            case "rate":
                return f"{self.producer} rate {self.rate:g}/s"
            case "restart-broker":
                return "kill -9 the broker and start it again" if self.crash else "restart the broker"
            case "drop-connection":
                return "drop the client's connection"
            case _:
                return f"{self.action} {who}"


@dataclass(frozen=True, slots=True)
class Expectation:
    """A figure that must hold at the end: ``metric`` (of a queue or consumer) compared to a value."""

    metric: Metric
    queue: str = ""
    consumer: str = ""
    producer: str = ""
    equals: int | None = None
    at_least: int | None = None
    at_most: int | None = None

    def describe(self) -> str:
        """The expectation as a user reads it."""
        who = self.consumer or self.producer
        where = f" in {self.queue}" if self.queue else f" by {who}" if who else ""
        bounds = []
        if self.equals is not None:
            bounds.append(f"= {self.equals}")
        if self.at_least is not None:
            bounds.append(f"≥ {self.at_least}")
        if self.at_most is not None:
            bounds.append(f"≤ {self.at_most}")
        return f"{self.metric}{where} {' and '.join(bounds)}"

    def holds(self, value: int) -> bool:
        """Whether a measured value satisfies this expectation."""
        return (
            (self.equals is None or value == self.equals)
            and (self.at_least is None or value >= self.at_least)
            and (self.at_most is None or value <= self.at_most)
        )
