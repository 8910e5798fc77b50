"""Request/reply: every reply goes to its client's reply queue and matches its request, on each broker."""

from __future__ import annotations

from dataclasses import replace

from broker_sim.domain.events import Acked, Delivered, Published
from broker_sim.domain.replies import SENT_AT, match_reply, reply_body, reply_id, request_of
from broker_sim.domain.scenario import DIRECT_REPLY_TO
from broker_sim.domain.scenario_file import load_scenario
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.settings import Settings
from tests.support import running

RPC = load_scenario(builtin_scenarios_dir() / "9-rpc.toml")


async def test_every_request_gets_one_reply_that_matches_it(settings: Settings) -> None:
    client = replace(RPC.producers[0], rate=100, count=12)
    servers = replace(RPC.consumers[0], work=replace(RPC.consumers[0].work, seconds=0))
    scenario = replace(RPC, producers=(client,), consumers=(servers, RPC.consumers[1]), timeline=())
    async with running(scenario, settings) as (engine, w):
        await w.until(lambda: w.tally.acked_per_queue["replies"] == 12, "12 replies matched")
        requests = {p.message_id for p in w.of(Published)}
        assert len(requests) == 12
        replies = [d for d in w.of(Delivered) if d.queue == "replies"]
        assert sorted(d.message_id for d in replies) == sorted(reply_id(r) for r in requests)
        # the reply queue is server-named: the requests named it by the broker's name
        assert engine.topology.queue_name("replies").startswith("amq.gen-")
        matched = [a.result for a in w.of(Acked) if a.queue == "replies"]
        assert all(r.startswith("reply to ") and " after " in r for r in matched), matched
        assert w.tally.nacked == 0


async def test_direct_reply_to_answers_every_request_on_the_clients_own_channel(settings: Settings) -> None:
    direct = replace(RPC.producers[1], rate=100, count=12)
    assert direct.reply_queue == DIRECT_REPLY_TO
    servers = replace(RPC.consumers[0], work=replace(RPC.consumers[0].work, seconds=0))
    # no reply queue, no consumer of replies: the client itself takes them on its publishing channel
    scenario = replace(RPC, queues=RPC.queues[:1], producers=(direct,), consumers=(servers,), timeline=())
    async with running(scenario, settings) as (_, w):
        await w.until(lambda: w.tally.acked_per_queue[DIRECT_REPLY_TO] == 12, "12 direct replies matched")
        requests = {p.message_id for p in w.of(Published)}
        assert len(requests) == 12 and all(p.request for p in w.of(Published))
        replies = [d for d in w.of(Delivered) if d.queue == DIRECT_REPLY_TO]
        assert sorted(d.message_id for d in replies) == sorted(reply_id(r) for r in requests)
        assert {d.consumer for d in replies} == {"direct-client"}
        # the broker named the channel in reply_to: the server answered to amq.rabbitmq.reply-to.…
        assert all(d.routing_key.startswith(f"{DIRECT_REPLY_TO}.") for d in replies)
        matched = [a.result for a in w.of(Acked) if a.queue == DIRECT_REPLY_TO]
        assert all(r.startswith("reply to ") and " after " in r for r in matched), matched
        assert (w.tally.unanswered, w.tally.nacked) == (0, 0)


def test_a_reply_reads_as_the_same_number_as_its_request() -> None:
    assert reply_id("3f2a.client.7") == "3f2a.client-reply.7"
    assert request_of("3f2a.client-reply.7") == "3f2a.client.7"


def test_a_reply_for_another_request_is_refused() -> None:
    body = reply_body("r.client.1", "done")
    assert match_reply("r.client.1", body, {SENT_AT: 0})[1] == ""
    result, why = match_reply("r.client.2", body, {})
    assert (result, why) == ("", "reply does not match its request r.client.2")
