"""`broker-sim run` without a usable broker: state changes once, a give-up line, exit 3; progress
written to a file is whole lines, not carriage returns."""

from __future__ import annotations

import io
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker_sim.domain.urls import build_url, mask_url, parse_url
from broker_sim.headless import EXIT_NO_BROKER, EXIT_PASSED, REFUSALS_BEFORE_GIVING_UP, run_headless
from broker_sim.settings import Settings
from tests.support import SHORT_SCENARIO


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the run draws its in-place status line."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared fixture's settings under names of this test's own (the default prefix is the app's)."""
    return settings.with_(name_prefix=f"t{uuid.uuid4().hex[:8]}.")


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "short.toml"
    path.write_text(SHORT_SCENARIO)
    return path


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound by this test, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _wrong_password(url: str) -> str:
    address = parse_url(url)
    return build_url(address.user, "not-the-password", address.host, address.port, address.vhost)


def _lines(text: str) -> list[str]:
    """What a reader sees: for each line, what is left after its last carriage return."""
    return [line.rsplit("\r", 1)[-1].rstrip() for line in text.splitlines()]


@pytest.mark.parametrize("stderr", [io.StringIO, Terminal])
async def test_a_refused_login_gives_up_after_a_few_attempts_with_exit_3(
    settings: Settings, scenario_file: Path, stderr: type[io.StringIO]
) -> None:
    bad = settings.with_(url=_wrong_password(settings.url), url_source="--url")
    err = stderr()
    assert await run_headless(scenario_file, bad, err=err) == EXIT_NO_BROKER
    text = err.getvalue()
    lines = _lines(text)
    assert len([ln for ln in lines if ln.startswith("[auth refused]")]) == 1, text
    last = lines[-1]
    assert last.startswith(f"broker-sim: {mask_url(bad.url)} refused us {REFUSALS_BEFORE_GIVING_UP} times")
    assert "check the user and password" in last and "--url" in last
    assert "not-the-password" not in text
    if stderr is Terminal:  # the attempts count up on one line
        assert f"\rconnecting to {mask_url(bad.url)}: attempt {REFUSALS_BEFORE_GIVING_UP}" in text
    else:
        assert "\r" not in text


async def test_nothing_listening_gives_up_in_one_line_naming_the_url_with_exit_3(
    scenario_file: Path, refused_port: int, tmp_path: Path
) -> None:
    url = build_url("someone", "s3cret", "127.0.0.1", refused_port)
    settings = Settings(url=url, url_source="--url", data_dir=tmp_path)
    err = io.StringIO()
    assert await run_headless(scenario_file, settings, err=err, connect_grace=2) == EXIT_NO_BROKER
    text = err.getvalue()
    lines = text.splitlines()
    assert len([ln for ln in lines if ln.startswith("[unreachable]")]) == 1, text
    assert lines[-1].startswith("broker-sim: no broker after 2 s; gave up: tried ")
    assert mask_url(url) in lines[-1] and "docker compose up -d" in lines[-1]
    assert "s3cret" not in text and "\r" not in text


async def test_progress_piped_to_a_file_is_whole_lines(settings: Settings, scenario_file: Path) -> None:
    err, out = io.StringIO(), io.StringIO()
    assert await run_headless(scenario_file, settings, err=err, out=out) == EXIT_PASSED
    text = err.getvalue()
    assert "\r" not in text
    progress = [ln for ln in text.splitlines() if re.match(r"\s*\d+% ", ln)]
    assert progress, text
    assert progress[-1].startswith("100% 1/1 s, draining")
    assert all("published" in ln for ln in progress[:-1])
    assert "Short and sweet" in out.getvalue()


async def test_progress_on_a_terminal_is_one_line_redrawn(settings: Settings, scenario_file: Path) -> None:
    err = Terminal()
    assert await run_headless(scenario_file, settings, err=err, out=io.StringIO()) == EXIT_PASSED
    text = err.getvalue()
    assert "\r[" in text
    assert "\n[##############################] 1/1 s, draining" in text


async def test_a_scenario_the_broker_refuses_gives_up_with_exit_3(
    settings: Settings, scenario_file: Path
) -> None:
    import aio_pika

    # The same name as the scenario's queue, but durable: declaring it again the scenario's way fails.
    taken = f"{settings.name_prefix}short.q"
    connection = await aio_pika.connect(settings.url)
    try:
        channel = await connection.channel()
        await channel.declare_queue(taken, durable=True)
        err = io.StringIO()
        assert await run_headless(scenario_file, settings, err=err) == EXIT_NO_BROKER
        lines = err.getvalue().splitlines()
        assert len([ln for ln in lines if ln.startswith("problem: setting up")]) == 1, lines
        assert lines[-1].startswith(
            f"broker-sim: {mask_url(settings.url)} answered, but the scenario could not be set up on it "
            f"({REFUSALS_BEFORE_GIVING_UP} tries); gave up: "
        )
        assert "PRECONDITION_FAILED" in lines[-1] and "'durable'" in lines[-1]
        assert lines[-1].endswith("delete it or use another vhost"), lines[-1]
    finally:
        channel = await connection.channel()
        await channel.queue_delete(taken)
        await connection.close()


def test_run_refuses_a_scenario_name_that_climbs_out_of_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from broker_sim.cli import main

    path = tmp_path / "bad.toml"
    path.write_text(SHORT_SCENARIO.replace('name = "short"', 'name = "../../outside"', 1))
    assert main(["--data-dir", str(tmp_path / "data"), "run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "climb out of a folder" in err[0], err
    assert not (tmp_path / "outside").exists()
