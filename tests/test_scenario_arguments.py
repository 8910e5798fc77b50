"""The scenario format's queue and exchange arguments: dead-lettering, TTLs, overflow, priority,
alternate exchanges, exchange-to-exchange bindings and a group's reject behaviour — read, refused
in one line when wrong, written back, and exported as definitions RabbitMQ imports."""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
import uuid
from pathlib import Path

import pytest

from broker_sim.domain.definitions import to_definitions
from broker_sim.domain.scenario import RejectSpec
from broker_sim.domain.scenario_file import ScenarioError, load_scenario, parse_scenario
from broker_sim.domain.scenario_writer import scenario_to_toml
from broker_sim.resources import builtin_scenarios_dir

FULL = """
name = "full"
title = "Full"

[[exchanges]]
name = "work"
type = "direct"
alternate_exchange = "lost"

[[exchanges]]
name = "lost"
type = "fanout"

[[exchanges]]
name = "copy"
type = "topic"

[[queues]]
name = "jobs"
dead_letter_exchange = ""
dead_letter_routing_key = "wait"
max_priority = 10
overflow = "reject-publish-dlx"
max_length = 3

[[queues]]
name = "wait"
message_ttl_ms = 500
dead_letter_exchange = "work"

[[queues]]
name = "parked"

[[bindings]]
exchange = "work"
queue = "jobs"
keys = ["job"]

[[bindings]]
exchange = "work"
to_exchange = "copy"
keys = ["job"]

[[bindings]]
exchange = "copy"
queue = "parked"
keys = ["#"]

[[producers]]
name = "p"
exchange = "work"
routing_keys = ["job"]
priority = 7
expiration_ms = 250

[[producers]]
name = "asker"
exchange = ""
routing_keys = ["jobs"]
reply_queue = "parked"

[[consumers]]
name = "w"
queue = "jobs"
reject = { share = 0.25, flaky = 0.5, tries = 2, park_exchange = "copy", park_key = "parked" }
reply = true
"""


def test_every_new_argument_is_read() -> None:
    s = parse_scenario(FULL, "full.toml")
    jobs, wait, _ = s.queues
    assert (jobs.dead_letter_exchange, jobs.dead_letter_routing_key) == ("", "wait")
    assert (jobs.max_priority, jobs.overflow, jobs.max_length) == (10, "reject-publish-dlx", 3)
    assert (wait.message_ttl_ms, wait.dead_letter_exchange, wait.dead_letter_routing_key) == (
        500,
        "work",
        None,
    )
    assert s.exchanges[0].alternate_exchange == "lost"
    e2e = [b for b in s.bindings if b.to_exchange]
    assert [(b.exchange, b.to_exchange, b.queue, b.routing_key) for b in e2e] == [("work", "copy", "", "job")]
    assert (s.producers[0].priority, s.producers[0].expiration_ms) == ((7,), 250)
    assert s.consumers[0].reject == RejectSpec(0.25, 0.5, False, 2, "copy", "parked")
    assert (s.producers[1].reply_queue, s.consumers[0].reply) == ("parked", True)


def test_they_write_back_to_toml_that_reads_the_same() -> None:
    s = parse_scenario(FULL, "full.toml")
    assert parse_scenario(scenario_to_toml(s), "again.toml") == s


def test_export_carries_them_as_rabbitmq_arguments() -> None:
    defs = to_definitions(parse_scenario(FULL, "full.toml"), vhost="v", prefix="t.")
    queues = {q["name"]: q["arguments"] for q in defs["queues"]}
    assert queues["t.jobs"] == {
        "x-max-length": 3,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "t.wait",  # on the default exchange the key names a queue
        "x-overflow": "reject-publish-dlx",
        "x-max-priority": 10,
    }
    assert queues["t.wait"] == {"x-message-ttl": 500, "x-dead-letter-exchange": "t.work"}
    exchanges = {e["name"]: e["arguments"] for e in defs["exchanges"]}
    assert exchanges["t.work"] == {"alternate-exchange": "t.lost"}
    e2e = [b for b in defs["bindings"] if b["destination_type"] == "exchange"]
    assert [(b["source"], b["destination"], b["routing_key"]) for b in e2e] == [("t.work", "t.copy", "job")]


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        (
            'dead_letter_exchange = "work"',
            'dead_letter_exchange = "nope"',
            "queues[1].dead_letter_exchange",
            "no exchange named 'nope'",
        ),
        (
            'dead_letter_exchange = "work"',
            'dead_letter_routing_key = "k"',
            "queues[1].dead_letter_routing_key",
            "needs dead_letter_exchange",
        ),
        (
            'overflow = "reject-publish-dlx"',
            'overflow = "block"',
            "queues[0].overflow",
            "must be one of drop-head, reject-publish",
        ),
        ("max_priority = 10", "max_priority = 0", "queues[0].max_priority", "must be from 1 to 255"),
        ("max_priority = 10", "max_priority = 300", "queues[0].max_priority", "must be from 1 to 255"),
        ("message_ttl_ms = 500", "message_ttl_ms = -5", "queues[1].message_ttl_ms", "must be ≥ 0"),
        (
            'alternate_exchange = "lost"',
            'alternate_exchange = "gone"',
            "exchanges[0].alternate_exchange",
            "no exchange named 'gone'",
        ),
        ('to_exchange = "copy"', 'to_exchange = "copy"\nqueue = "jobs"', "bindings[1]", "one of them"),
        ('to_exchange = "copy"', 'to_exchange = "nowhere"', "bindings[1].to_exchange", "joins two exchanges"),
        ("priority = 7", "priority = 256", "producers[0].priority", "must be from 0 to 255"),
        ("expiration_ms = 250", "expiration_ms = -1", "producers[0].expiration_ms", "must be ≥ 0"),
        ("share = 0.25", "share = 1.5", "consumers[0].reject.share", "at most 1"),
        ("flaky = 0.5", "flaky = 0.9", "consumers[0].reject.flaky", "share + flaky is at most 1"),
        ("tries = 2,", "tries = 2, requeue = true,", "consumers[0].reject.requeue", "x-death"),
        (
            ', park_exchange = "copy", park_key = "parked"',
            "",
            "consumers[0].reject",
            "tries needs park_exchange",
        ),
        ("tries = 2, ", "", "consumers[0].reject.park_exchange", "needs tries"),
        (
            'park_exchange = "copy"',
            'park_exchange = "void"',
            "consumers[0].reject.park_exchange",
            "no exchange named 'void'",
        ),
        ("reject = {", 'ack = "auto"\nreject = {', "consumers[0].reject", "auto-ack consumer cannot reject"),
        ("reject = {", "reject = { when = 1, ", "consumers[0].reject.when", "unknown key"),
        (
            'dead_letter_exchange = ""\ndead_letter_routing_key = "wait"\n',
            "",
            "consumers[0].reject.tries",
            "give that queue a dead_letter_exchange",
        ),
        (
            'reply_queue = "parked"',
            'reply_queue = "inbox"',
            "producers[1].reply_queue",
            "no queue named 'inbox'",
        ),
        (
            'exchange = ""\nrouting_keys = ["jobs"]',
            'exchange = "work"\nrouting_keys = ["jobs"]',
            "producers[1].reply_queue",
            "default exchange",
        ),
        ("reply = true", "reply = 1", "consumers[0].reply", "expected true or false"),
    ],
)
def test_bad_arguments_get_one_line_naming_key_line_and_reason(
    old: str, new: str, key: str, words: str
) -> None:
    assert old in FULL
    text = FULL.replace(old, new, 1)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "bad.toml")
    err = caught.value
    assert (err.key, words in err.reason) == (key, True), str(err)
    assert err.line is not None and str(err).startswith(f"bad.toml:{err.line}: ")
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    "name", ["6-retry.toml", "7-overflow.toml", "8-priority.toml", "9-rpc.toml", "10-confirms.toml"]
)
def test_exported_definitions_import_cleanly_into_rabbitmq(name: str, rabbitmq_url: str) -> None:
    from tests.support import rabbitmqctl

    scenario = load_scenario(builtin_scenarios_dir() / name)
    vhost = f"broker-sim-test-import-{uuid.uuid4().hex[:8]}"
    # rabbitmqctl runs as the rabbitmq user: it needs a file it can read, outside a 0700 temp dir
    folder = Path(tempfile.mkdtemp(prefix="broker-sim-defs-"))
    folder.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    path = folder / "definitions.json"
    path.write_text(json.dumps(to_definitions(scenario, vhost=vhost, prefix="x.")))
    path.chmod(0o644)
    try:
        rabbitmqctl("import_definitions", str(path))
        queues = rabbitmqctl("list_queues", "-p", vhost, "name", "arguments", "--no-table-headers")
        exchanges = rabbitmqctl("list_exchanges", "-p", vhost, "name", "arguments", "--no-table-headers")
        bindings = rabbitmqctl(
            "list_bindings",
            "-p",
            vhost,
            "source_name",
            "destination_name",
            "destination_kind",
            "--no-table-headers",
        )
    finally:
        shutil.rmtree(folder)
        rabbitmqctl("delete_vhost", vhost)
    assert {line.split("\t")[0] for line in queues.splitlines()} == {"x." + q.name for q in scenario.queues}
    for q in scenario.queues:
        row = next(line for line in queues.splitlines() if line.split("\t")[0] == "x." + q.name)
        if q.dead_letter_exchange is not None:
            assert f'x-dead-letter-exchange","x.{q.dead_letter_exchange}' in row.replace("{", "").replace(
                "<<", ""
            ).replace(">>", ""), row
        if q.max_priority is not None:
            assert "x-max-priority" in row and str(q.max_priority) in row, row
        if q.overflow is not None:
            assert q.overflow in row, row
    for e in scenario.exchanges:
        assert "x." + e.name in exchanges
        if e.alternate_exchange:
            row = next(line for line in exchanges.splitlines() if line.startswith(f"x.{e.name}\t"))
            assert f"x.{e.alternate_exchange}" in row, row
    expected = {
        (f"x.{b.exchange}", f"x.{b.destination}", "exchange" if b.to_exchange else "queue")
        for b in scenario.bindings
        if b.exchange
    }
    assert expected <= {tuple(line.split("\t")) for line in bindings.splitlines()}


def test_the_publish_forms_hint_names_an_exchange_binding_as_an_exchange() -> None:
    from broker_sim.tui.publish_form import key_hint

    scenario = load_scenario(builtin_scenarios_dir() / "7-overflow.toml")
    assert key_hint(scenario, "orders") == "e.g. paid (bound to shipping, exchange audit)"
