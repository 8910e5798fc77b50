"""Scenario files: the built-ins load, and a bad file is refused in one line that says where and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker_sim.domain.scenario_file import ScenarioError, load_scenario, load_scenarios, parse_scenario
from broker_sim.resources import builtin_scenarios_dir

BASE = """
name = "t"
title = "T"

[[exchanges]]
name = "x"
type = "direct"

[[queues]]
name = "q"
"""


def test_the_patterns_are_built_in() -> None:
    scenarios = load_scenarios(builtin_scenarios_dir())
    names = ["work-queue", "pubsub", "routing", "topic", "headers", "retry", "overflow", "priority", "rpc"]
    names.append("confirms")  # the tenth: file names sort as numbers, 10-confirms after 9-rpc
    assert [s.name for s in scenarios] == names
    kinds = {s.name: {e.type for e in s.exchanges} for s in scenarios}
    assert kinds == {
        "work-queue": set(),
        "pubsub": {"fanout"},
        "routing": {"direct"},
        "topic": {"topic"},
        "headers": {"headers"},
        "retry": {"direct", "fanout"},
        "overflow": {"direct", "fanout"},
        "priority": set(),
        "rpc": set(),
        "confirms": {"direct"},
    }
    headers = next(s for s in scenarios if s.name == "headers")
    assert {b.match for b in headers.bindings} == {"all", "any"}
    assert all(s.help.strip() for s in scenarios)


@pytest.mark.parametrize(
    ("extra", "key", "line", "reason"),
    [
        (
            '[[consumers]]\nname = "c"\nqueue = "q"\nprefetch = "ten"\n',
            "consumers[0].prefetch",
            15,
            "expected an integer",
        ),
        (
            '[[consumers]]\nname = "c"\nqueue = "nowhere"\n',
            "consumers[0].queue",
            14,
            "no queue named 'nowhere'",
        ),
        ('[[producers]]\nname = "p"\nexchange = "y"\n', "producers[0].exchange", 14, "no exchange named 'y'"),
        ('[[producers]]\nname = "p"\nexchange = "x"\nspeed = 3\n', "producers[0].speed", None, "unknown key"),
        (
            '[[bindings]]\nexchange = "x"\nqueue = "q"\nheaders = { a = 1 }\n',
            "bindings[0].headers",
            15,
            "need a headers exchange",
        ),
        ('[[consumers]]\nname = "c"\nqueue = "q"\ncount = -1\n', "consumers[0].count", 15, "must be ≥ 0"),
        (
            '[[consumers]]\nname = "c"\nqueue = "q"\nwork = { kind = "paint" }\n',
            "consumers[0].work.kind",
            None,
            "must be one of image, log, delay",
        ),
        (  # each consumer is a channel: 100,000 of them used to fail at the broker (channel_max)
            '[[consumers]]\nname = "c"\nqueue = "q"\ncount = 100000\n',
            "consumers[0].count",
            15,
            "at most 200 consumers in a group",
        ),
        (
            "".join(f'[[consumers]]\nname = "c{i}"\nqueue = "q"\ncount = 200\n\n' for i in range(6)),
            "consumers[5].count",
            40,
            "1200 consumers at once, over the 1000",
        ),
        (
            '[[consumers]]\nname = "c"\nqueue = "q"\nprefetch = 70000\n',
            "consumers[0].prefetch",
            15,
            "at most 65535",
        ),
        (
            '[[producers]]\nname = "p"\nexchange = "x"\nrate = 1e9\n',
            "producers[0].rate",
            15,
            "at most 10,000 messages per second, got 1e+09",
        ),
        ('[[producers]]\nname = "p"\nexchange = "x"\nrate = nan\n', "producers[0].rate", 15, "finite"),
        ('[[producers]]\nname = "p"\nexchange = "x"\nrate = inf\n', "producers[0].rate", 15, "finite"),
    ],
)
def test_bad_files_get_one_line_with_key_line_and_reason(
    extra: str, key: str, line: int | None, reason: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE + "\n" + extra, "my.toml")
    err = caught.value
    assert err.key == key
    assert reason in err.reason
    if line is not None:
        assert err.line == line
    assert "\n" not in str(err) and str(err).startswith("my.toml")


def test_topic_pattern_with_a_glued_wildcard_is_refused() -> None:
    text = BASE.replace('type = "direct"', 'type = "topic"') + (
        '\n[[bindings]]\nexchange = "x"\nqueue = "q"\nkeys = ["kern*"]\n'
    )
    with pytest.raises(ScenarioError, match=r"bindings\[0\]\.keys: pattern 'kern\*'.*whole words"):
        parse_scenario(text, "t.toml")


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario('name = "t"\ntitle = \n', "broken.toml")
    assert caught.value.line == 2 and "not valid TOML" in caught.value.reason


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read the file"):
        load_scenario(tmp_path / "missing.toml")


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ScenarioError, match=r"queues\[1\]\.name: 'q' is used twice"):
        parse_scenario(BASE + '\n[[queues]]\nname = "q"\n', "d.toml")


STORY = (
    BASE
    + """
[[producers]]
name = "p"
exchange = "x"

[[consumers]]
name = "c"
queue = "q"
"""
)


def test_timeline_steps_are_sorted_and_expectations_read() -> None:
    text = STORY + (
        '\n[[timeline]]\nat = 5\naction = "kill"\ngroup = "c"\n'
        '\n[[timeline]]\nat = 1\naction = "burst"\nproducer = "p"\ncount = 3\n'
        '\n[[expect]]\nmetric = "lost"\nequals = 0\n'
    )
    scenario = parse_scenario(text, "s.toml")
    assert [s.action for s in scenario.timeline] == ["burst", "kill"]
    assert scenario.expectations[0].describe() == "lost = 0"


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ('at = 1\naction = "explode"\n', "must be one of scale, kill"),
        ('at = 1\naction = "kill"\ngroup = "ghost"\n', "no group named 'ghost'"),
        ('at = 1\naction = "kill"\ngroup = "c"\ncount = 2\n', "not used by action 'kill'"),
        ('at = 1\naction = "scale"\ngroup = "c"\n', "action 'scale' needs 'count'"),
        (
            'at = 1\naction = "burst"\nproducer = "p"\ncount = 1000000\n',
            "at most 100,000 messages in a burst",
        ),
        ('at = 1\naction = "rate"\nproducer = "p"\nrate = 50000\n', "at most 10,000 messages per second"),
        ('at = -1\naction = "pause"\n', "must be ≥ 0"),
        (
            'at = 1\naction = "scale"\ngroup = "c"\ncount = 100000\n',
            r"timeline\[0\]\.count: at most 200 consumers",
        ),
        (
            'at = 1\naction = "prefetch"\ngroup = "c"\nprefetch = 65536\n',
            r"timeline\[0\]\.prefetch: at most 65535",
        ),
    ],
)
def test_bad_timeline_steps_are_refused(step: str, words: str) -> None:
    with pytest.raises(ScenarioError, match=words):
        parse_scenario(STORY + "\n[[timeline]]\n" + step, "s.toml")


def test_groups_scaled_by_the_timeline_count_together() -> None:
    # STORY's group c has 1 consumer, these six 900 more: 901.
    groups = "".join(f'\n[[consumers]]\nname = "g{i}"\nqueue = "q"\ncount = 150\n' for i in range(6))
    steps = (  # 851 at t=2, 901 at t=5, 951 at t=9: fits
        '\n[[timeline]]\nat = 9\naction = "scale"\ngroup = "g0"\ncount = 200\n'
        '\n[[timeline]]\nat = 2\naction = "scale"\ngroup = "g1"\ncount = 100\n'
        '\n[[timeline]]\nat = 5\naction = "scale"\ngroup = "g2"\ncount = 200\n'
    )
    assert len(parse_scenario(STORY + groups + steps, "s.toml").timeline) == 3
    over = steps.replace("at = 2\n", "at = 12\n")  # g1 shrinks only after g0 grows: 1001 at t=9
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(STORY + groups + over, "s.toml")
    assert str(caught.value).startswith("s.toml:")
    assert caught.value.key == "timeline[0].count"
    assert "1001 consumers at once, over the 1000" in caught.value.reason


def test_an_expectation_needs_a_bound() -> None:
    with pytest.raises(ScenarioError, match=r"expect\[0\]: needs a bound"):
        parse_scenario(STORY + '\n[[expect]]\nmetric = "lost"\n', "s.toml")


def test_scenarios_write_back_to_toml_that_reads_the_same() -> None:
    from broker_sim.domain.scenario_writer import scenario_to_toml

    for scenario in load_scenarios(builtin_scenarios_dir()):
        assert parse_scenario(scenario_to_toml(scenario, "a comment"), "round.toml") == scenario


STRATEGY_KEYS = [
    "name",
    "title",
    "queues",
    "exchanges",
    "bindings",
    "producers",
    "consumers",
    "timeline",
    "expect",
    "duration",
    "keys",
    "queue",
    "exchange",
    "type",
    "prefetch",
    "count",
    "at",
    "action",
    "metric",
    "headers",
    "match",
    "work",
    "kind",
    "rate",
    "routing_keys",
]


def _documents() -> object:
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.integers(-5, 70000),
        st.floats(allow_nan=False),
        st.booleans(),
        st.sampled_from(
            [
                "x",
                "q",
                "direct",
                "topic",
                "headers",
                "fanout",
                "kill",
                "all",
                "lost",
                "kern.*",
                "a*",
                "",
                "c",
                "p",
            ]
        ),
    )
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(STRATEGY_KEYS), inner, max_size=4)
        ),
        max_leaves=12,
    )
    return st.dictionaries(st.sampled_from(STRATEGY_KEYS), values, max_size=8)


def test_any_document_is_a_scenario_or_one_clear_error() -> None:
    import tomli_w
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(doc=_documents(), garbage=st.text(max_size=40))
    def check(doc: dict[str, object], garbage: str) -> None:
        full = {"name": "n", "title": "t", **doc}
        for text in (tomli_w.dumps(doc), tomli_w.dumps(full), garbage, BASE + tomli_w.dumps(doc)):
            message = ""
            try:
                parse_scenario(text, "fuzz.toml")
            except ScenarioError as exc:
                message = str(exc)
            if message:
                assert "\n" not in message
                assert message.startswith("fuzz.toml")

    check()


def test_export_is_rabbitmq_definitions(tmp_path: Path) -> None:
    import json

    from broker_sim.cli import main

    out = tmp_path / "defs.json"
    assert (
        main(["export", str(builtin_scenarios_dir() / "5-headers.toml"), "--vhost", "v", "-o", str(out)]) == 0
    )
    defs = json.loads(out.read_text())
    assert {e["name"]: e["type"] for e in defs["exchanges"]} == {"documents": "headers"}
    assert {q["name"] for q in defs["queues"]} == {"pdf-reports", "anything-urgent"}
    rules = {b["destination"]: b["arguments"] for b in defs["bindings"]}
    assert rules["pdf-reports"] == {"x-match": "all", "format": "pdf", "type": "report"}
    assert all(b["vhost"] == "v" for b in defs["bindings"])


def test_the_annotated_example_in_the_docs_is_a_valid_scenario() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    scenario = parse_scenario(example, "docs/scenarios.md")
    assert [s.action for s in scenario.timeline] == ["burst", "kill", "restart-broker", "prefetch"]
    assert len(scenario.bindings) == 2


def test_a_dotted_scenario_name_is_a_normal_handle() -> None:
    scenario = parse_scenario(BASE.replace('name = "t"', 'name = "shop.orders"', 1))
    assert scenario.name == "shop.orders"


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ('name = "t"', 'name = "../../etc"', "name", "climb out of a folder"),
        ('name = "t"', 'name = "a/b"', "name", "file path"),
        ('name = "t"', 'name = ".."', "name", "climb out of a folder"),
        (
            'name = "q"\n',
            'name = "q"\n[[consumers]]\nname = "../w"\nqueue = "q"\n',
            "consumers[0].name",
            "'..'",
        ),
    ],
)
def test_names_that_would_reach_outside_a_folder_are_refused(
    old: str, new: str, key: str, words: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE.replace(old, new, 1))
    assert caught.value.key == key
    assert words in caught.value.reason
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("expect", "key", "words"),
    [
        (
            'metric = "routed"\nat_least = 1',
            "expect[0].metric",
            "'routed' is not counted for the whole run (add queue",
        ),
        (
            'metric = "published"\nqueue = "q"\nat_least = 1',
            "expect[0].metric",
            "not counted for a queue ('q')",
        ),
        ('metric = "lost"\nconsumer = "c-1"\nequals = 0', "expect[0].metric", "not counted for a consumer"),
        (
            'metric = "acked"\nconsumer = "worker-1"\nat_least = 1',
            "expect[0].consumer",
            "no consumer named 'worker-1'",
        ),
        (
            'metric = "acked"\nconsumer = "c"\nat_least = 1',
            "expect[0].consumer",
            "named GROUP-N from 1 (e.g. c-1)",
        ),
        ('metric = "acked"\nconsumer = "c-0"\nat_least = 1', "expect[0].consumer", "no consumer named 'c-0'"),
        ('metric = "acked"\nqueue = "q"\nconsumer = "c-1"\nat_least = 1', "expect[0]", "not several"),
    ],
)
def test_expectations_with_no_meaning_where_they_are_asked_are_refused(
    expect: str, key: str, words: str
) -> None:
    text = f'{BASE}\n[[consumers]]\nname = "c"\nqueue = "q"\n\n[[expect]]\n{expect}\n'
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text)
    assert caught.value.key == key
    assert words in caught.value.reason


def test_expectations_of_a_queue_a_consumer_and_the_run_load() -> None:
    expects = [
        'metric = "routed"\nqueue = "q"\nat_least = 1',
        'metric = "acked"\nconsumer = "c-12"\nat_least = 1',
        'metric = "routing_unknown"\nequals = 0',
        'metric = "publish_nacked"\nequals = 0',
    ]
    text = f'{BASE}\n[[consumers]]\nname = "c"\nqueue = "q"\n' + "".join(
        f"\n[[expect]]\n{e}\n" for e in expects
    )
    assert [e.metric for e in parse_scenario(text).expectations] == [
        "routed",
        "acked",
        "routing_unknown",
        "publish_nacked",
    ]
