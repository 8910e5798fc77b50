"""`broker-sim run`: every built-in scenario's story holds on the real broker; exit codes say how it went."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker_sim.cli import main
from broker_sim.domain.scenario_file import load_scenarios
from broker_sim.headless import run_headless, run_scenario
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.settings import Settings
from tests.support import SHORT_SCENARIO

SCENARIOS = {s.name: s for s in load_scenarios(builtin_scenarios_dir())}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_builtin_story_meets_its_expectations(name: str, settings: Settings) -> None:
    scenario = SCENARIOS[name]
    assert scenario.timeline and scenario.expectations
    report = await run_scenario(scenario, settings, speed=4)
    assert report is not None
    failed = [f"{v.expectation} (got {v.value})" for v in report.verdicts if not v.passed]
    assert not failed, failed
    assert report.routing == "traced"
    # every publish was answered: confirmed, returned, or refused (a full reject-publish queue)
    assert report.published == report.confirmed + report.returned + report.publish_nacked


FAILING = (
    SHORT_SCENARIO.replace('name = "short"', 'name = "fails"', 1)
    .replace('"Short and sweet"', '"Fails on purpose"')
    .replace("at_least = 1", "equals = 100000")
)


async def test_a_failed_expectation_exits_1_and_writes_json(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "fails.toml"
    path.write_text(FAILING)
    out = tmp_path / "report.json"
    assert await run_headless(path, settings, json_path=out) == 1
    data = json.loads(out.read_text())
    assert data["passed"] is False
    assert data["verdicts"][0]["expectation"] == "published = 100000"
    assert data["published"] == data["verdicts"][0]["value"] > 0


def test_a_bad_file_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(FAILING.replace('metric = "published"', 'metric = "happiness"'))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "bad.toml:20: expect[0].metric: must be one of" in err
