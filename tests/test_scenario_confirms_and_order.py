"""The scenario format's confirm modes, per-message priorities, direct reply-to and the
expectations on order and on producers: read, refused in one line when wrong, and written back."""

from __future__ import annotations

import pytest

from broker_sim.domain.events import Confirmed, Delivered, Published, PublishFailed, Returned
from broker_sim.domain.overtaking import Overtaking
from broker_sim.domain.scenario_file import ScenarioError, parse_scenario
from broker_sim.domain.scenario_writer import scenario_to_toml
from broker_sim.domain.tally import Tally

BASE = """
name = "t"
title = "T"

[[queues]]
name = "q"

[[producers]]
name = "p"
exchange = ""
routing_keys = ["q"]
"""


def producer(extra: str) -> str:
    return BASE + extra + "\n"


def test_confirm_modes_windows_and_priorities_are_read_and_written_back() -> None:
    text = producer('confirm = "async"\nwindow = 20\npriority = [1, 1, 9]\npick = "random"')
    scenario = parse_scenario(text)
    spec = scenario.producers[0]
    assert (spec.confirm, spec.window, spec.priority) == ("async", 20, (1, 1, 9))
    assert parse_scenario(scenario_to_toml(scenario)) == scenario
    single = parse_scenario(producer('confirm = "single"\npriority = 4')).producers[0]
    assert (single.confirm, single.window, single.priority) == ("single", None, (4,))
    plain = parse_scenario(BASE).producers[0]
    assert (plain.confirm, plain.window, plain.priority) == (None, None, ())


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('confirm = "batch"', "producers[0].confirm", "must be one of single, window, async"),
        ('confirm = "single"\nwindow = 5', "producers[0].window", "one at a time has none"),
        ("window = 5", "producers[0].window", "add confirm = …"),
        ('confirm = "window"\nwindow = 0', "producers[0].window", "from 1 to 10,000"),
        ('confirm = "async"\nwindow = 20000', "producers[0].window", "from 1 to 10,000"),
        ("priority = [1, 300]", "producers[0].priority", "from 0 to 255"),
        ('priority = ["high"]', "producers[0].priority", "an integer or a list of integers"),
        ('reply_queue = "replies"', "producers[0].reply_queue", "'amq.rabbitmq.reply-to': direct reply-to"),
    ],
)
def test_bad_producer_fields_are_refused_in_one_line(extra: str, key: str, words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(producer(extra))
    assert caught.value.key == key
    assert words in caught.value.reason
    assert "\n" not in str(caught.value)


def test_direct_reply_to_needs_the_default_exchange_and_its_answers_count_as_a_queue() -> None:
    direct = producer('reply_queue = "amq.rabbitmq.reply-to"')
    expect = '\n[[expect]]\nmetric = "acked"\nqueue = "amq.rabbitmq.reply-to"\nat_least = 1\n'
    scenario = parse_scenario(direct + expect)
    assert scenario.producers[0].direct_reply
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE + expect)  # nobody uses direct reply-to: no such queue
    assert caught.value.key == "expect[0].queue"
    routed = direct.replace('exchange = ""', 'exchange = "x"').replace(
        "[[queues]]", '[[exchanges]]\nname = "x"\ntype = "direct"\n\n[[queues]]'
    )
    with pytest.raises(ScenarioError, match="requests go to the default exchange"):
        parse_scenario(routed)


@pytest.mark.parametrize(
    ("expect", "key", "words"),
    [
        ('metric = "overtook"\nat_least = 1', "expect[0].metric", "(add queue = …)"),
        ('metric = "max_outstanding"\nat_most = 1', "expect[0].metric", "(add producer = …)"),
        (
            'metric = "max_outstanding"\nqueue = "q"\nat_most = 1',
            "expect[0].metric",
            "not counted for a queue",
        ),
        ('metric = "acked"\nproducer = "p"\nat_least = 1', "expect[0].metric", "not counted for a producer"),
        ('metric = "confirmed"\nproducer = "nobody"\nat_least = 1', "expect[0].producer", "known: 'p'"),
        ('metric = "confirmed"\nproducer = "p"\nqueue = "q"\nat_least = 1', "expect[0]", "not several"),
    ],
)
def test_order_and_producer_expectations_are_refused_where_they_mean_nothing(
    expect: str, key: str, words: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(f"{BASE}\n[[expect]]\n{expect}\n")
    assert caught.value.key == key
    assert words in caught.value.reason


def test_order_and_producer_expectations_load() -> None:
    expects = [
        'metric = "overtook"\nqueue = "q"\nat_least = 1',
        'metric = "max_outstanding"\nproducer = "p"\nat_most = 1',
        'metric = "unanswered"\nequals = 0',
        'metric = "unanswered"\nproducer = "p"\nequals = 0',
    ]
    scenario = parse_scenario(BASE + "".join(f"\n[[expect]]\n{e}\n" for e in expects))
    assert [(e.metric, e.queue, e.producer) for e in scenario.expectations] == [
        ("overtook", "q", ""),
        ("max_outstanding", "", "p"),
        ("unanswered", "", ""),
        ("unanswered", "", "p"),
    ]
    assert parse_scenario(scenario_to_toml(scenario)) == scenario


def test_overtaking_counts_only_a_higher_priority_delivered_before_an_earlier_lower_one() -> None:
    order = Overtaking()
    for mid, priority in (("b1", 1), ("b2", 1), ("b3", None), ("u1", 9), ("u2", 9)):
        order.published(mid, priority)
    for mid in ("b1", "u1", "u2", "b2", "b3"):  # b1 was in hand; u1, u2 jump b2 and b3
        order.delivered("tasks", mid)
    assert order.overtook["tasks"] == 2
    fifo = Overtaking()
    for i, priority in enumerate((1, 9, 1, 9)):
        fifo.published(f"m{i}", priority)
    for i in range(4):  # delivered in publish order: nothing overtook, whatever the priorities
        fifo.delivered("q", f"m{i}")
    assert fifo.overtook["q"] == 0


def test_outstanding_publishes_are_counted_per_producer() -> None:
    tally = Tally()
    for i in range(3):
        tally(Published(f"m{i}", "p", "", "q"))
    tally(Confirmed("m0", "p"))
    tally(Returned("m1", "p", "", "q", "NO_ROUTE"))
    tally(Published("m3", "p", "", "q"))
    tally(PublishFailed("m2", "p", "nacked", refused=True))
    figures = tally.producers["p"]
    assert (figures.published, figures.outstanding, figures.max_outstanding) == (4, 1, 3)
    assert (figures.confirmed, figures.returned, figures.publish_nacked) == (1, 1, 1)


def test_a_request_is_unanswered_until_its_matched_reply_is_acked() -> None:
    from broker_sim.domain.events import Acked

    tally = Tally()
    tally(Published("r.client.1", "client", "", "rpc", request=True))
    tally(Published("r.client.2", "client", "", "rpc", request=True))
    tally(Delivered("r.client-reply.1", "replies", "inbox-1", False))
    tally(Acked("r.client-reply.1", "replies", "inbox-1", 0.0, "reply to r.client.1 after 3 ms"))
    assert (tally.unanswered, tally.producers["client"].unanswered) == (1, 1)
    tally(Returned("r.client.2", "client", "", "rpc", "NO_ROUTE"))  # no answer will come
    assert tally.unanswered == 0
