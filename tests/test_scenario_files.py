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


def test_the_five_patterns_are_built_in() -> None:
    scenarios = load_scenarios(builtin_scenarios_dir())
    assert [s.name for s in scenarios] == ["work-queue", "pubsub", "routing", "topic", "headers"]
    kinds = {s.name: {e.type for e in s.exchanges} for s in scenarios}
    assert kinds == {
        "work-queue": set(),
        "pubsub": {"fanout"},
        "routing": {"direct"},
        "topic": {"topic"},
        "headers": {"headers"},
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
        ('at = -1\naction = "pause"\n', "must be ≥ 0"),
    ],
)
def test_bad_timeline_steps_are_refused(step: str, words: str) -> None:
    with pytest.raises(ScenarioError, match=words):
        parse_scenario(STORY + "\n[[timeline]]\n" + step, "s.toml")


def test_an_expectation_needs_a_bound() -> None:
    with pytest.raises(ScenarioError, match=r"expect\[0\]: needs a bound"):
        parse_scenario(STORY + '\n[[expect]]\nmetric = "lost"\n', "s.toml")
