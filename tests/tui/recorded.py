"""Recorded event streams for the view: test data, not a broker.

Each story is what the engine reported during a few seconds of one built-in scenario, written
out as FlowEvents in order, cut into chunks; between chunks the view advances a fixed number of
frames, so tokens stand mid-flight at the same cells every time. Every story has messages at
every stage: on their way to the exchange, in a queue, in a consumer's hands, done.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from broker_sim.domain.events import (
    Abandoned,
    Acked,
    Confirmed,
    ConnectionChanged,
    ConsumerDown,
    ConsumerUp,
    Delivered,
    FlowEvent,
    LinkState,
    Nacked,
    Published,
    PublishFailed,
    QueueDepth,
    Returned,
    Routed,
    TracingChanged,
)
from broker_sim.domain.scenario import HeaderValue

URL = "amqp://guest:****@localhost:5672/"


@dataclass
class Story:
    """Builds one recorded stream: chunks of events, each followed by some frames."""

    exchange: str
    chunks: list[tuple[list[FlowEvent], int]] = field(default_factory=list)
    seconds: set[int] = field(default_factory=set)
    """Chunks after which a second passes: the view samples its rates (measured confirms)."""
    _now: list[FlowEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.add(
            ConnectionChanged(LinkState.CONNECTED, URL, "routing traced by the broker"),
            TracingChanged(True, "the broker traces this vhost"),
        )

    def add(self, *events: FlowEvent) -> Story:
        self._now.extend(events)
        return self

    def frames(self, n: int) -> Story:
        """Close the chunk: the view then advances ``n`` frames."""
        self.chunks.append((self._now, n))
        self._now = []
        return self

    def second(self) -> Story:
        """A second passes after the chunk closed last."""
        self.seconds.add(len(self.chunks) - 1)
        return self

    def up(self, consumer: str, group: str, queue: str, prefetch: int = 10) -> Story:
        return self.add(ConsumerUp(consumer, group, queue, prefetch, "manual"))

    def publish(
        self,
        producer: str,
        seq: int,
        key: str,
        headers: dict[str, HeaderValue] | None = None,
        priority: int | None = None,
    ) -> str:
        mid = f"r1.{producer}.{seq}"
        preview = f"message #{seq}"
        self.add(
            Published(
                mid, producer, self.exchange, key, dict(headers or {}), False, preview, priority=priority
            )
        )
        return mid

    def through(
        self,
        producer: str,
        seq: int,
        key: str,
        queues: dict[str, str],
        headers: dict[str, HeaderValue] | None = None,
    ) -> str:
        """A message's whole trip: published, confirmed, routed, delivered to each consumer, acked."""
        mid = self.publish(producer, seq, key, headers)
        self.add(Confirmed(mid, producer), Routed(mid, self.exchange, key, tuple(queues), "trace"))
        for queue, consumer in queues.items():
            self.add(Delivered(mid, queue, consumer, False, key, self.exchange))
            self.add(Acked(mid, queue, consumer, 12.0, "done"))
        return mid

    def returned(
        self, producer: str, seq: int, key: str, headers: dict[str, HeaderValue] | None = None
    ) -> str:
        mid = self.publish(producer, seq, key, headers)
        self.add(
            Routed(mid, self.exchange, key, (), "trace"),
            Returned(mid, producer, self.exchange, key, "NO_ROUTE"),
            Confirmed(mid, producer),
        )
        return mid

    def depth(self, queue: str, ready: int, unacked: int, consumers: int) -> Story:
        return self.add(QueueDepth(queue, ready, unacked, consumers))

    @property
    def events(self) -> list[FlowEvent]:
        """Every event of the story, in order."""
        return [e for chunk, _ in self.chunks for e in chunk] + self._now


def work_queue() -> Story:
    """Three image workers; worker-2 is killed holding job 5, which worker-3 gets, redelivered."""
    s = Story("")
    for n in (1, 2, 3):
        s.up(f"worker-{n}", "worker", "image-jobs", prefetch=1)
    for seq, worker in ((1, "worker-1"), (2, "worker-2"), (3, "worker-3")):
        mid = s.publish("main-server", seq, "image-jobs")
        s.add(Confirmed(mid, "main-server"), Routed(mid, "", "image-jobs", ("image-jobs",), "trace"))
        s.add(Delivered(mid, "image-jobs", worker, False, "image-jobs", ""))
        s.add(Acked(mid, "image-jobs", worker, 41.0 + seq, f"thumbnail+greyscale 128x96 {seq}.4 kB"))
    s.frames(40)
    for seq in (4, 5, 6, 7):
        mid = s.publish("main-server", seq, "image-jobs")
        s.add(Confirmed(mid, "main-server"), Routed(mid, "", "image-jobs", ("image-jobs",), "trace"))
    s.add(Delivered("r1.main-server.4", "image-jobs", "worker-1", False, "image-jobs", ""))
    s.add(Delivered("r1.main-server.5", "image-jobs", "worker-2", False, "image-jobs", ""))
    s.frames(40)
    s.add(Abandoned("r1.main-server.5", "image-jobs", "worker-2", True))
    s.add(ConsumerDown("worker-2", "worker", "image-jobs", "killed"))
    s.frames(20)
    s.add(Delivered("r1.main-server.5", "image-jobs", "worker-3", True, "image-jobs", ""))
    mid = s.publish("main-server", 8, "image-jobs")
    s.depth("image-jobs", 2, 2, 2)
    return s.frames(8)


def pubsub() -> Story:
    """A fanout: every message copied to both subscribers' queues."""
    s = Story("logs")
    s.up("screen-1", "screen", "screen").up("archive-1", "archive", "archive")
    for seq in (1, 2):
        s.through("emitter", seq, "app.info", {"screen": "screen-1", "archive": "archive-1"})
    s.frames(40)
    mid = s.publish("emitter", 3, "app.error")
    s.add(Routed(mid, "logs", "app.error", ("screen", "archive"), "trace"))
    s.add(Delivered(mid, "screen", "screen-1", False, "app.error", "logs"))
    s.frames(22)
    s.publish("emitter", 4, "app.warning")
    s.depth("screen", 0, 1, 1).depth("archive", 1, 0, 1)
    return s.frames(6)


def routing() -> Story:
    """Severities to log servers; a debug line matches no binding and comes back."""
    s = Story("direct-logs")
    s.up("disk-1", "disk", "disk-server").up("console-1", "console", "console-server")
    s.through("app", 1, "error", {"disk-server": "disk-1", "console-server": "console-1"})
    s.through("app", 2, "info", {"console-server": "console-1"})
    s.frames(40)
    s.returned("app", 3, "debug")
    mid = s.publish("app", 4, "warning")
    s.add(Routed(mid, "direct-logs", "warning", ("console-server",), "trace"))
    s.frames(20)
    s.publish("app", 5, "error")
    s.depth("disk-server", 0, 0, 1).depth("console-server", 1, 0, 1)
    return s.frames(5)


def topic() -> Story:
    """Patterns: kern.critical reaches all three queues, cron.warning only '#'."""
    s = Story("topic-logs")
    for name in ("kernel", "critical", "all"):
        s.up(f"{name}-1", name, name)
    s.through("syslog", 1, "kern.info", {"kernel": "kernel-1", "all": "all-1"})
    s.frames(40)
    mid = s.publish("syslog", 2, "kern.critical")
    s.add(Routed(mid, "topic-logs", "kern.critical", ("kernel", "critical", "all"), "trace"))
    s.add(Delivered(mid, "all", "all-1", False, "kern.critical", "topic-logs"))
    s.frames(20)
    s.publish("syslog", 3, "cron.warning")
    s.depth("kernel", 1, 0, 1).depth("critical", 1, 0, 1).depth("all", 0, 1, 1)
    return s.frames(6)


def headers() -> Story:
    """Header rules: a pdf report matches x-match=all, a txt note matches nothing and returns."""
    s = Story("documents")
    s.up("reports-1", "reports", "pdf-reports").up("urgent-1", "urgent", "anything-urgent")
    s.through("scanner", 1, "", {"pdf-reports": "reports-1"}, {"format": "pdf", "type": "report"})
    s.frames(40)
    s.returned("scanner", 2, "", {"format": "txt", "type": "note"})
    mid = s.publish("scanner", 3, "", {"format": "zip", "type": "report", "urgent": True})
    s.add(Routed(mid, "documents", "", ("anything-urgent",), "trace"))
    s.frames(20)
    s.depth("pdf-reports", 0, 0, 1).depth("anything-urgent", 1, 0, 1)
    return s.frames(4)


def retry() -> Story:
    """Job 2 fails once, waits in 'wait' and comes back done; poison job 3 parks after 3 tries."""
    s = Story("jobs")
    s.up("worker-1", "worker", "work", prefetch=1).up("worker-2", "worker", "work", prefetch=1)
    s.up("ops-1", "ops", "parking-lot")
    s.through("server", 1, "job", {"work": "worker-1"})
    mid2 = s.publish("server", 2, "job")
    s.add(Confirmed(mid2, "server"), Routed(mid2, "jobs", "job", ("work",), "trace"))
    s.add(Delivered(mid2, "work", "worker-2", False, "job", "jobs"))
    s.add(Nacked(mid2, "work", "worker-2", requeue=False, reason="job failed on try 1"))
    s.depth("wait", 1, 0, 0)
    s.frames(40)
    mid3 = s.publish("server", 3, "job")
    s.add(Confirmed(mid3, "server"), Routed(mid3, "jobs", "job", ("work",), "trace"))
    s.add(Delivered(mid2, "work", "worker-1", False, "job", "jobs"))  # back from 'wait'
    s.add(Acked(mid2, "work", "worker-1", 201.0, "done"))
    s.add(Delivered(mid3, "work", "worker-2", False, "job", "jobs"))
    s.add(Nacked(mid3, "work", "worker-2", requeue=False, reason="job failed on try 3: parked after 3 tries"))
    s.add(Routed(mid3, "parking", "job", ("parking-lot",), "trace"))
    s.frames(20)
    s.add(Delivered(mid3, "parking-lot", "ops-1", False, "job", "parking"))
    s.publish("server", 4, "job")
    s.depth("work", 0, 1, 2).depth("wait", 2, 0, 0).depth("parking-lot", 0, 1, 1)
    return s.frames(6)


def overflow() -> Story:
    """'refund' caught by the alternate exchange; 'paid' #4 nacked by a full 'shipping'."""
    s = Story("orders")
    s.up("shipper-1", "shipper", "shipping", prefetch=1)
    s.up("auditor-1", "auditor", "audit-log").up("ops-1", "ops", "unrouted-orders")
    s.through("shop", 1, "paid", {"shipping": "shipper-1", "audit-log": "auditor-1"})
    s.through("shop", 2, "refund", {"unrouted-orders": "ops-1"})
    s.frames(40)
    mid = s.publish("shop", 3, "paid")
    s.add(Confirmed(mid, "shop"), Routed(mid, "orders", "paid", ("shipping", "audit-log"), "trace"))
    s.add(Delivered(mid, "audit-log", "auditor-1", False, "paid", "orders"))
    mid = s.publish("shop", 4, "paid")
    s.add(Routed(mid, "orders", "paid", ("shipping", "audit-log"), "trace"))
    s.add(PublishFailed(mid, "shop", "the broker refused it (Basic.Nack)", refused=True))
    s.frames(20)
    s.publish("shop", 5, "refund")
    s.depth("shipping", 5, 1, 1).depth("audit-log", 0, 1, 1).depth("unrouted-orders", 0, 0, 1)
    return s.frames(6)


def priority() -> Story:
    """A backlog of bulk tasks; an urgent one published later is delivered next."""
    s = Story("")
    s.up("worker-1", "worker", "tasks", prefetch=1)
    for seq in (1, 2, 3):
        mid = s.publish("bulk", seq, "tasks", priority=1)
        s.add(Confirmed(mid, "bulk"), Routed(mid, "", "tasks", ("tasks",), "trace"))
    s.add(Delivered("r1.bulk.1", "tasks", "worker-1", False, "tasks", ""))
    s.add(Acked("r1.bulk.1", "tasks", "worker-1", 500.0, "done"))
    s.frames(40)
    mid = s.publish("urgent", 1, "tasks", priority=9)
    s.add(Confirmed(mid, "urgent"), Routed(mid, "", "tasks", ("tasks",), "trace"))
    s.add(Delivered(mid, "tasks", "worker-1", False, "tasks", ""))  # ahead of bulk 2 and 3
    s.frames(20)
    s.publish("bulk", 4, "tasks", priority=1)
    s.depth("tasks", 3, 1, 1)
    return s.frames(6)


def rpc() -> Story:
    """Two requests answered and matched; a third in a server's hands, its reply not back yet."""
    s = Story("")
    s.up("server-1", "server", "rpc-requests", prefetch=1).up(
        "server-2", "server", "rpc-requests", prefetch=1
    )
    s.up("inbox-1", "inbox", "replies", prefetch=20)
    for seq, server in ((1, "server-1"), (2, "server-2")):
        mid = s.publish("client", seq, "rpc-requests")
        s.add(Confirmed(mid, "client"), Routed(mid, "", "rpc-requests", ("rpc-requests",), "trace"))
        s.add(Delivered(mid, "rpc-requests", server, False, "rpc-requests", ""))
        s.add(Acked(mid, "rpc-requests", server, 400.0, f"answered {mid}: done"))
        reply = f"r1.client-reply.{seq}"
        s.add(Routed(reply, "", "amq.gen-x", ("replies",), "trace"))
        s.add(Delivered(reply, "replies", "inbox-1", False, "amq.gen-x", ""))
        s.add(Acked(reply, "replies", "inbox-1", 0.0, f"reply to {mid} after {402 + seq} ms"))
    # the direct client's answer comes straight to its channel: no queue, no inbox
    mid = s.publish("direct-client", 1, "rpc-requests")
    s.add(Confirmed(mid, "direct-client"), Routed(mid, "", "rpc-requests", ("rpc-requests",), "trace"))
    s.add(Delivered(mid, "rpc-requests", "server-2", False, "rpc-requests", ""))
    s.add(Acked(mid, "rpc-requests", "server-2", 400.0, f"answered {mid}: done"))
    reply = "r1.direct-client-reply.1"
    s.add(
        Delivered(reply, "amq.rabbitmq.reply-to", "direct-client", False, "amq.rabbitmq.reply-to.g1h2AA", "")
    )
    s.add(
        Acked(reply, "amq.rabbitmq.reply-to", "direct-client", 0.0, f"reply to {mid} after 407 ms", auto=True)
    )
    s.frames(40)
    mid = s.publish("client", 3, "rpc-requests")
    s.add(Confirmed(mid, "client"), Routed(mid, "", "rpc-requests", ("rpc-requests",), "trace"))
    s.add(Delivered(mid, "rpc-requests", "server-1", False, "rpc-requests", ""))
    s.frames(20)
    s.publish("client", 4, "rpc-requests")
    s.publish("direct-client", 2, "rpc-requests")
    s.depth("rpc-requests", 0, 1, 2).depth("replies", 0, 0, 1)
    return s.frames(6)


def confirms() -> Story:
    """Two seconds of three producers: one-by-one confirms least; windowed and async have some in flight."""
    s = Story("shop")
    s.up("packer-1", "packer", "orders", prefetch=200).up("packer-2", "packer", "orders", prefetch=200)
    seq = {"one-by-one": 0, "windowed": 0, "async": 0}
    for per_second in (
        {"one-by-one": 4, "windowed": 10, "async": 14},
        {"one-by-one": 5, "windowed": 12, "async": 16},
    ):
        for producer, n in per_second.items():
            for _ in range(n):
                seq[producer] += 1
                s.through(producer, seq[producer], "order", {"orders": f"packer-{1 + seq[producer] % 2}"})
        s.frames(20).second()
    for producer, n in (("one-by-one", 1), ("windowed", 5), ("async", 7)):  # awaiting their confirms
        for _ in range(n):
            seq[producer] += 1
            s.publish(producer, seq[producer], "order")
    s.depth("orders", 0, 0, 2)
    return s.frames(6)


STORIES = {
    "work-queue": work_queue,
    "pubsub": pubsub,
    "routing": routing,
    "topic": topic,
    "headers": headers,
    "retry": retry,
    "overflow": overflow,
    "priority": priority,
    "rpc": rpc,
    "confirms": confirms,
}
