"""Request/reply: every reply goes to its client's reply queue and matches its request, on each broker."""

from __future__ import annotations

from dataclasses import replace

from broker_sim.domain.events import Acked, Delivered, Published
from broker_sim.domain.replies import SENT_AT, match_reply, reply_body, reply_id
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


def test_a_reply_reads_as_the_same_number_as_its_request() -> None:
    assert reply_id("3f2a.client.7") == "3f2a.client-reply.7"


def test_a_reply_for_another_request_is_refused() -> None:
    body = reply_body("r.client.1", "done")
    assert match_reply("r.client.1", body, {SENT_AT: 0})[1] == ""
    result, why = match_reply("r.client.2", body, {})
    assert (result, why) == ("", "reply does not match its request r.client.2")
