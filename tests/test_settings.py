"""Where the broker URL comes from, and that a password never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker_sim.cli import main
from broker_sim.domain.urls import DEFAULT_URL, BrokerUrlError, mask_url, parse_url
from broker_sim.settings import load_settings

DOTENV = "RABBITMQ_DEFAULT_USER=sim\nRABBITMQ_DEFAULT_PASS=p@ss:word/1\nRABBITMQ_DEFAULT_VHOST=broker-sim\n"


@pytest.fixture
def dotenv(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(DOTENV)
    return path


def test_flag_beats_environment_beats_dotenv_beats_default(dotenv: Path, tmp_path: Path) -> None:
    env = {"BROKER_SIM_URL": "amqp://e:e@env-host/"}
    assert load_settings("amqp://f:f@flag-host/", env=env, dotenv=dotenv).url_source == "--url"
    assert load_settings(None, env=env, dotenv=dotenv).url == "amqp://e:e@env-host/"
    from_file = load_settings(None, env={}, dotenv=dotenv)
    assert from_file.url_source == str(dotenv)
    assert parse_url(from_file.url).vhost == "broker-sim"
    assert parse_url(from_file.url).user == "sim"
    assert load_settings(None, env={}, dotenv=tmp_path / "missing").url == DEFAULT_URL


def test_dotenv_password_with_special_characters_survives_quoting(dotenv: Path) -> None:
    from urllib.parse import unquote, urlsplit

    url = load_settings(None, env={}, dotenv=dotenv).url
    assert unquote(urlsplit(url).password or "") == "p@ss:word/1"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://user:secret@host:5672/vh", "amqp://user:****@host:5672/vh"),
        ("amqp://user@host/", "amqp://user@host/"),
        ("amqp://host/", "amqp://host/"),
        ("amqps://u:p%40ss@[::1]:5671/", "amqps://u:****@[::1]:5671/"),
    ],
)
def test_masking_hides_only_the_password(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_masked_url_in_settings(dotenv: Path) -> None:
    settings = load_settings(None, env={}, dotenv=dotenv)
    assert "p%40ss" not in settings.masked_url and "****" in settings.masked_url


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://localhost/", "must start with amqp://"),
        ("amqp:///vhost", "has no host"),
        ("amqp://h:notaport/", "bad port"),
    ],
)
def test_bad_urls_are_refused_in_words(url: str, words: str) -> None:
    with pytest.raises(BrokerUrlError, match=words):
        parse_url(url)


def test_cli_refuses_a_bad_url_in_one_line_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "http://me:topsecret@host/", "run", "nothing.toml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "topsecret" not in err and "amqp://" in err


def test_logs_go_to_a_file_with_passwords_masked(tmp_path: Path) -> None:
    import logging

    from broker_sim.logs import configure_logging

    path = configure_logging(tmp_path)
    logging.getLogger("aiormq.connection").error("cannot reach %s", "amqp://user:hunter2@host:5672/")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text()
    assert "amqp://user:****@host:5672/" in text
    assert "hunter2" not in text


def test_a_broken_url_or_env_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(BrokerUrlError, match="cannot be read"):
        parse_url("amqp://u:p@[::1")
    env = tmp_path / ".env"
    env.write_text("RABBITMQ_DEFAULT_USER=a\nRABBITMQ_PORT=abc\n")
    with pytest.raises(BrokerUrlError, match="RABBITMQ_PORT must be a port number, got 'abc'"):
        load_settings(None, env={}, dotenv=env)


def test_management_url_flag_beats_environment(tmp_path: Path) -> None:
    env = {"BROKER_SIM_MANAGEMENT_URL": "https://from-env:15671/"}
    none = tmp_path / "no.env"
    assert load_settings(env={}, dotenv=none).management_url is None
    assert load_settings(env=env, dotenv=none).management_url == "https://from-env:15671/"
    flag = load_settings(env=env, dotenv=none, management_url="http://127.0.0.1:15673/")
    assert flag.management_url == "http://127.0.0.1:15673/"
