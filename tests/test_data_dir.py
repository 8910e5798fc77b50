"""``--data-dir``: where broker-sim keeps its log and its embedded broker, flag before environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker_sim.cli import _parser, build_settings, main
from broker_sim.settings import load_settings
from tests.support import SHORT_SCENARIO


def test_the_flag_beats_the_environment_beats_the_default(tmp_path: Path) -> None:
    env = {"BROKER_SIM_DATA_DIR": str(tmp_path / "env")}
    assert load_settings(env=env, data_dir=tmp_path / "flag").data_dir == tmp_path / "flag"
    assert load_settings(env=env).data_dir == tmp_path / "env"
    assert load_settings(env={}).data_dir.name == "broker-sim"


@pytest.mark.parametrize(
    "argv",
    [
        ["--data-dir", "{dir}", "run", "s.toml"],
        ["run", "s.toml", "--data-dir", "{dir}"],
        ["--data-dir", "{dir}"],
    ],
)
def test_the_app_and_run_take_data_dir_before_or_after_the_command(argv: list[str], tmp_path: Path) -> None:
    args = _parser().parse_args([a.format(dir=tmp_path) for a in argv])
    assert build_settings(args).data_dir == tmp_path


def test_data_dir_gives_a_second_broker_sim_an_embedded_broker_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from broker_sim.embedded.launch import EmbeddedBroker

    scenario = tmp_path / "tiny.toml"
    scenario.write_text(SHORT_SCENARIO)
    taken = tmp_path / "taken"
    first = EmbeddedBroker(taken / "embedded")  # another broker-sim's broker holds this folder
    first.start_sync()
    try:
        assert main(["run", str(scenario), "--broker", "embedded", "--data-dir", str(taken)]) == 3
        refused = capsys.readouterr().err
        assert f"another broker uses {taken / 'embedded'}" in refused and "--data-dir" in refused
        own = tmp_path / "own"
        assert main(["--data-dir", str(own), "run", str(scenario), "--broker", "embedded"]) == 0
        assert (own / "embedded" / "broker.log").is_file()
        assert (own / "broker-sim.log").is_file()
    finally:
        first.stop_sync()
