"""Which vhost a start uses: the URL's, else --vhost, the environment, .env, the remembered choice, /."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker_sim.cli import _parser, build_settings, main
from broker_sim.domain.urls import parse_url
from broker_sim.remembered_vhost import memory_path, remember_vhost
from broker_sim.settings import load_settings

URL = "amqp://guest:guest@localhost:5672/"


def vhost_of(url: str) -> str:
    return parse_url(url).vhost


def test_flag_beats_environment_beats_dotenv_beats_remembered_beats_slash(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("BROKER_SIM_VHOST=from-dotenv\n")
    env = {"BROKER_SIM_URL": URL, "BROKER_SIM_VHOST": "from-env"}
    data = tmp_path / "data"
    remember_vhost(data, URL, "broker-sim")

    flagged = load_settings(None, env=env, dotenv=dotenv, data_dir=data, vhost="from-flag")
    assert (vhost_of(flagged.url), flagged.vhost_source) == ("from-flag", "--vhost")
    from_env = load_settings(None, env=env, dotenv=dotenv, data_dir=data)
    assert (vhost_of(from_env.url), from_env.vhost_source) == ("from-env", "BROKER_SIM_VHOST")
    from_file = load_settings(None, env={"BROKER_SIM_URL": URL}, dotenv=dotenv, data_dir=data)
    assert (vhost_of(from_file.url), from_file.vhost_source) == ("from-dotenv", str(dotenv))
    remembered = load_settings(None, env={}, dotenv=tmp_path / "none", data_dir=data)
    assert vhost_of(remembered.url) == "broker-sim"
    assert remembered.vhost_source == f"remembered in {memory_path(data)}"
    plain = load_settings(None, env={}, dotenv=tmp_path / "none", data_dir=tmp_path / "fresh")
    assert (vhost_of(plain.url), plain.vhost_source) == ("/", "")


def test_the_urls_own_vhost_wins(tmp_path: Path) -> None:
    remember_vhost(tmp_path, URL, "broker-sim")
    for url, vhost in (("amqp://guest:guest@localhost:5672/mine", "mine"), (f"{URL}%2F", "/")):
        settings = load_settings(url, env={"BROKER_SIM_VHOST": "x"}, data_dir=tmp_path, vhost="y")
        assert (vhost_of(settings.url), settings.vhost_source) == (vhost, "")


def test_a_remembered_choice_is_for_the_same_user_on_the_same_broker_only(tmp_path: Path) -> None:
    remember_vhost(tmp_path, URL, "broker-sim")
    for other in ("amqp://bob:b@localhost:5672/", "amqp://guest:guest@localhost:5673/"):
        assert vhost_of(load_settings(other, env={}, data_dir=tmp_path).url) == "/"


def test_the_vhost_flag_reaches_the_settings_and_a_spoilt_memory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(["--vhost", "lab", "--url", URL, "--data-dir", str(tmp_path)])
    assert vhost_of(build_settings(args).url) == "lab"
    args = _parser().parse_args(["run", "x.toml", "--vhost", "lab", "--url", URL])
    assert vhost_of(build_settings(args).url) == "lab"

    memory_path(tmp_path).write_text("{not json")
    assert main(["--url", URL, "--data-dir", str(tmp_path), "run", "x.toml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"broker-sim: {memory_path(tmp_path)} cannot be read")
    assert "delete it" in err
