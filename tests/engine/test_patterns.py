"""Each exchange type routes exactly as RabbitMQ does, and the engine reports exactly that."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from broker_sim.domain.events import Delivered, Published, Returned, Routed
from broker_sim.domain.scenario import (
    BindingSpec,
    ConsumerGroupSpec,
    ExchangeSpec,
    HeaderValue,
    ProducerSpec,
    QueueSpec,
    Scenario,
    WorkSpec,
)
from broker_sim.settings import Settings
from tests.support import Watcher, running


def received(w: Watcher) -> dict[str, set[str]]:
    """Message ids each queue delivered (first deliveries)."""
    got: dict[str, set[str]] = defaultdict(set)
    for d in w.of(Delivered):
        got[d.queue].add(d.message_id)
    return got


def published_with(w: Watcher, predicate: object) -> set[str]:
    return {p.message_id for p in w.of(Published) if predicate(p)}  # type: ignore[operator]


def one_exchange(
    kind: str,
    bindings: dict[str, list[str] | tuple[str, dict[str, HeaderValue]]],
    *,
    keys: tuple[str, ...] = ("",),
    headers: tuple[dict[str, HeaderValue], ...] = (),
    count: int,
) -> Scenario:
    """One exchange, one queue per binding entry, one consumer per queue, ``count`` messages."""
    queues = tuple(QueueSpec(q) for q in bindings)
    binds: list[BindingSpec] = []
    for q, rule in bindings.items():
        if isinstance(rule, tuple):
            binds.append(BindingSpec("x", q, headers=rule[1], match=rule[0]))  # type: ignore[arg-type]
        else:
            binds.extend(BindingSpec("x", q, k) for k in rule)
    return Scenario(
        name=f"{kind}-test",
        title=f"{kind} test",
        exchanges=(ExchangeSpec("x", kind),),  # type: ignore[arg-type]
        queues=queues,
        bindings=tuple(binds),
        producers=(ProducerSpec("p", "x", rate=500, routing_keys=keys, headers=headers, count=count),),
        consumers=tuple(ConsumerGroupSpec(q, q, prefetch=50) for q in bindings),
    )


def settled(w: Watcher, n: int) -> bool:
    return w.tally.confirmed + w.tally.returned == n


async def test_fanout_copies_every_message_to_every_subscriber(settings: Settings) -> None:
    scenario = one_exchange("fanout", {"a": [""], "b": [""], "c": [""]}, keys=("ignored", "x.y"), count=20)
    scenario = replace(
        scenario, queues=tuple(QueueSpec(q.name, exclusive=True, server_named=True) for q in scenario.queues)
    )
    async with running(scenario, settings) as (_, w):
        await w.until(lambda: w.tally.acked == 60, "60 deliveries (20 x 3 subscribers)")
        everything = published_with(w, lambda p: True)
        assert len(everything) == 20
        assert received(w) == {"a": everything, "b": everything, "c": everything}


async def test_direct_delivers_only_matching_keys_and_returns_the_rest(settings: Settings) -> None:
    scenario = one_exchange(
        "direct",
        {"disk": ["error"], "console": ["info", "warning", "error"]},
        keys=("info", "warning", "error", "debug"),
        count=40,
    )
    async with running(scenario, settings) as (_, w):
        await w.until(lambda: settled(w, 40) and w.tally.acked == 40, "30 delivered to console + 10 to disk")
        by_key = lambda key: published_with(w, lambda p: p.routing_key == key)  # noqa: E731
        assert received(w) == {
            "disk": by_key("error"),
            "console": by_key("info") | by_key("warning") | by_key("error"),
        }
        assert {r.message_id for r in w.of(Returned)} == by_key("debug")
        assert all(r.reply_text == "NO_ROUTE" for r in w.of(Returned))


# Keys against patterns, as RabbitMQ matches them: '*' is exactly one word (an empty word counts),
# '#' is zero or more words, anywhere in the pattern.
TOPIC_PATTERNS = {
    "kern-any": ["kern.*"],
    "critical": ["*.critical"],
    "everything": ["#"],
    "a-to-z": ["a.#.z"],
    "ends-x": ["#.x"],
    "exact": ["kern.info"],
}
TOPIC_TABLE: dict[str, set[str]] = {
    "kern.info": {"kern-any", "everything", "exact"},
    "kern.critical": {"kern-any", "critical", "everything"},
    "auth.critical": {"critical", "everything"},
    "kern": {"everything"},
    "kern.info.extra": {"everything"},
    "a.z": {"a-to-z", "everything"},
    "a.b.c.z": {"a-to-z", "everything"},
    "x": {"ends-x", "everything"},
    "a.x": {"ends-x", "everything"},
    ".critical": {"critical", "everything"},
    "kern.": {"kern-any", "everything"},
    "a..z": {"a-to-z", "everything"},
    "": {"everything"},
}


async def test_topic_patterns_match_words_as_rabbitmq_does(settings: Settings) -> None:
    keys = tuple(TOPIC_TABLE)
    scenario = one_exchange("topic", TOPIC_PATTERNS, keys=keys, count=len(keys) * 2)
    expected_deliveries = 2 * sum(len(v) for v in TOPIC_TABLE.values())
    async with running(scenario, settings) as (_, w):
        await w.until(lambda: w.tally.acked == expected_deliveries, f"{expected_deliveries} deliveries")
        got = received(w)
        key_of = {p.message_id: p.routing_key for p in w.of(Published)}
        for queue in TOPIC_PATTERNS:
            want = {k for k, queues in TOPIC_TABLE.items() if queue in queues}
            assert {key_of[m] for m in got.get(queue, set())} == want, queue


async def test_headers_all_vs_any_and_value_types(settings: Settings) -> None:
    headers: tuple[dict[str, HeaderValue], ...] = (
        {"format": "pdf", "type": "report"},  # all-pdf-report, any-pdf
        {"format": "pdf", "type": "invoice"},  # any-pdf
        {"format": "zip", "type": "report"},  # nothing
        {"n": 1},  # number-one
        {"n": "1"},  # string-one (the string "1" is not the number 1)
    )
    scenario = one_exchange(
        "headers",
        {
            "all-pdf-report": ("all", {"format": "pdf", "type": "report"}),
            "any-pdf": ("any", {"format": "pdf", "type": "never"}),
            "number-one": ("all", {"n": 1}),
            "string-one": ("all", {"n": "1"}),
        },
        headers=headers,
        count=10,
    )
    async with running(scenario, settings) as (_, w):
        await w.until(lambda: settled(w, 10) and w.tally.acked == 10, "10 deliveries")
        sent = {p.message_id: p.headers for p in w.of(Published)}
        got = {q: [sent[m] for m in ids] for q, ids in received(w).items()}
        assert sorted(map(str, got["all-pdf-report"])) == [str(headers[0])] * 2
        assert sorted(map(str, got["any-pdf"])) == sorted([str(headers[0]), str(headers[1])] * 2)
        assert got["number-one"] == [headers[3]] * 2
        assert got["string-one"] == [headers[4]] * 2
        assert len(w.of(Returned)) == 2  # the zip report matched nothing


async def test_trace_routing_matches_deliveries(settings: Settings) -> None:
    scenario = one_exchange("direct", {"q1": ["k"], "q2": ["k", "other"]}, keys=("k", "other"), count=20)
    async with running(scenario, settings) as (engine, w):
        await w.until(lambda: w.tally.acked == 30, "30 deliveries")
        assert engine.traced
        routed = {r.message_id: set(r.queues) for r in w.of(Routed)}
        assert all(r.source == "trace" for r in w.of(Routed))
        delivered: dict[str, set[str]] = defaultdict(set)
        for d in w.of(Delivered):
            delivered[d.message_id].add(d.queue)
        assert routed == delivered


async def test_routing_is_inferred_and_says_so_without_tracing(
    rabbitmq_settings: Settings, rabbitmq_url: str
) -> None:
    settings = rabbitmq_settings
    from tests.support import rabbitmqctl

    vhost = "broker-sim-test-untraced"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        from broker_sim.domain.urls import with_vhost

        untraced = settings.with_(url=with_vhost(rabbitmq_url, vhost), trace=False)
        scenario = one_exchange("direct", {"q": ["k"]}, keys=("k",), count=5)
        async with running(scenario, untraced) as (engine, w):
            await w.until(lambda: w.tally.acked == 5, "5 deliveries")
            assert not engine.traced
            assert {r.source for r in w.of(Routed)} == {"inferred"}
            assert len(w.of(Routed)) == 5
    finally:
        rabbitmqctl("delete_vhost", vhost)


async def test_a_binding_added_behind_the_engines_back_changes_reported_routing(settings: Settings) -> None:
    import aio_pika

    scenario = one_exchange("direct", {"q": ["k"]}, keys=("k",), count=10_000)
    scenario = replace(scenario, producers=(ProducerSpec("p", "x", rate=20, routing_keys=("k",)),))
    async with running(scenario, settings) as (engine, w):
        await w.until(lambda: w.tally.acked >= 2, "traffic flowing")
        conn = await aio_pika.connect(settings.url)
        try:
            ch = await conn.channel()
            spy = await ch.declare_queue("", exclusive=True)
            await spy.bind(engine.topology.exchange_name("x"), "k")
            await w.until(lambda: any(spy.name in r.queues for r in w.of(Routed)), "routing to the spy queue")
            last = next(r for r in reversed(w.of(Routed)) if spy.name in r.queues)
            assert set(last.queues) == {"q", spy.name}
        finally:
            await conn.close()


async def test_image_jobs_carry_a_reference_and_are_processed_with_pillow(settings: Settings) -> None:
    scenario = Scenario(
        name="images",
        title="images",
        queues=(QueueSpec("jobs"),),
        producers=(ProducerSpec("server", "", rate=50, routing_keys=("jobs",), body="image-job", count=4),),
        consumers=(ConsumerGroupSpec("w", "jobs", work=WorkSpec("image", 0, ("thumbnail", "greyscale"))),),
    )
    async with running(scenario, settings) as (_, w):
        await w.until(lambda: w.tally.acked == 4, "4 jobs processed")
        assert all(len(p.body_preview) < 80 and "gen:" in p.body_preview for p in w.of(Published))
        results = [fig.last_result for fig in w.tally.consumers.values()]
        assert results and all(r.startswith("thumbnail+greyscale 128x") for r in results)
