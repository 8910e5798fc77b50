"""Pilot tests of stories (P), saved sessions (S) and uploads (--api-port) on the real broker."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
from textual.widgets import ProgressBar, Static

from broker_sim.domain.events import Acked, Published
from broker_sim.domain.scenario_file import load_scenario
from broker_sim.headless import run_scenario
from broker_sim.settings import Settings
from broker_sim.tui.replay import SPEEDS, step_speed
from tests.engine.test_uploads import upload_png
from tests.tui.harness import until_screen
from tests.tui.test_brokers import app_on
from tests.tui.test_live import canvas_text


async def test_P_plays_the_story_with_progress_speed_and_the_headless_verdict(
    settings: Settings, tmp_path: Path
) -> None:
    async with app_on(settings, "routing") as (_app, tab, w, pilot):
        await w.until(lambda: tab.view.connected, "the live engine connected")
        live_engine = tab.controller.engine
        await pilot.press("P")
        await until_screen(
            pilot,
            lambda: tab.controller.story is not None and tab.controller.story.phase == "playing",
            "playing",
        )
        assert tab.controller.engine is not live_engine and tab.query_one("#story-bar").display
        await pilot.press("p")  # paused: scenario time stands still
        await until_screen(
            pilot,
            lambda: tab.controller.story is not None and tab.controller.story.phase == "paused",
            "paused",
        )
        assert tab.controller.engine is not None
        held_at = tab.controller.engine.scenario_time()
        await pilot.pause()
        await pilot.pause()
        assert tab.controller.engine.scenario_time() == held_at
        await pilot.press("p")
        await until_screen(
            pilot,
            lambda: tab.controller.story is not None and tab.controller.story.phase != "paused",
            "resumed",
        )
        await pilot.press("greater_than_sign", "greater_than_sign")
        await until_screen(
            pilot, lambda: tab.controller.story is not None and tab.controller.story.speed == 4.0, "4x"
        )
        bar = tab.query_one("#story-progress", ProgressBar)
        await until_screen(pilot, lambda: (bar.progress or 0) > 0, "the progress bar moving")
        await until_screen(pilot, lambda: "at 4x" in str(tab.query_one("#story-time", Static).content), "4x")
        await until_screen(pilot, lambda: "✓" in verdicts(tab) or "✗" in verdicts(tab), "the expectations")
        # loss is judged once the messages in flight settle, not while they fly
        story = tab.controller.story
        assert story is not None
        assert "lost = 0 (checked when the story ends)" in verdicts(tab) or story.phase != "playing"
        await until_screen(
            pilot,
            lambda: tab.controller.story is not None and tab.controller.story.phase == "done",
            "the story over",
            rounds=20_000,
        )
        assert "final verdict" in verdicts(tab)
        # the story is over: its producers are held, and their boxes say so
        await until_screen(pilot, lambda: "3 msg/s" not in canvas_text(tab), "no rate on a held producer")
        assert "held" in canvas_text(tab)
        assert tab.controller.story is not None
        on_screen = [(v.expectation, v.passed) for v in tab.controller.story.verdicts]
    headless = await run_scenario(tab.scenario, settings.with_(data_dir=tmp_path / "headless"), speed=4)
    assert headless is not None
    assert on_screen == [(v.expectation, v.passed) for v in headless.verdicts]


def verdicts(tab: object) -> str:
    return str(tab.query_one("#story-verdicts", Static).content)  # type: ignore[attr-defined]


def test_the_speed_ladder() -> None:
    assert [step_speed(s, 1) for s in SPEEDS] == [0.5, 1.0, 2.0, 4.0, 10.0, 10.0]
    assert [step_speed(s, -1) for s in SPEEDS] == [0.25, 0.25, 0.5, 1.0, 2.0, 4.0]


async def test_S_saves_a_session_that_replays_to_the_same_counts(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    async with app_on(settings.with_(scenarios_dir=folder), "routing") as (_app, tab, w, pilot):
        await w.until(lambda: w.tally.published >= 5, "some traffic")
        await pilot.press("plus")  # a control, recorded as a step
        await w.until(lambda: w.tally.published >= 15, "more traffic")
        await pilot.press("S")
        await until_screen(pilot, lambda: tab.controller.saved is not None, "the file saved", rounds=20_000)
        assert tab.controller.saved is not None
        path = tab.controller.saved
    assert path.parent == folder and path.name.startswith("routing-recorded-")
    saved = load_scenario(path)
    figures = {e.metric + e.queue: e.equals for e in saved.expectations}
    assert figures["published"] is not None and figures["published"] >= 15
    assert [s.action for s in saved.timeline] == ["scale"]
    report = await run_scenario(saved, settings.with_(data_dir=tmp_path / "replay"), speed=2)
    assert report is not None
    assert report.published == figures["published"]
    assert report.returned == figures["returned"]
    for queue, fig in report.queues.items():
        if f"routed{queue}" in figures:
            assert fig.routed == figures[f"routed{queue}"], queue
    assert report.passed, [v for v in report.verdicts if not v.passed]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_uploaded_png_becomes_a_job_the_workers_process(settings: Settings) -> None:
    port = free_port()
    async with app_on(settings.with_(api_port=port)) as (_app, tab, w, pilot):
        await until_screen(
            pilot, lambda: tab.controller.uploads is not None, "the upload server", rounds=4000
        )
        line = str(tab.query_one("#uploads", Static).content)
        assert f"curl -F image=@photo.png http://127.0.0.1:{port}/jobs" in line
        # The upload server may answer before the engine is connected (it then says 503, not
        # connected, as it should): a user's first upload comes once the tab runs.
        await until_screen(
            pilot, lambda: tab.controller.engine is not None and tab.controller.engine.connected, "connected"
        )
        async with aiohttp.ClientSession() as http:
            job = await upload_png(http, f"http://127.0.0.1:{port}")
        await w.until(lambda: any(a.message_id == job for a in w.of(Acked)), "the uploaded job processed")
        mine = next(p for p in w.of(Published) if p.message_id == job)
        assert mine.producer == "you"
        acked = next(a for a in w.of(Acked) if a.message_id == job)
        assert acked.result.startswith("thumbnail+greyscale")
        await until_screen(
            pilot,
            lambda: tab.view.tally.consumers[acked.consumer].acked >= 1 and job in tab.view.previews,
            "the job counted in the tab",
        )


async def test_a_port_in_use_is_one_line_and_the_app_runs_on(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        async with app_on(settings.with_(api_port=port)) as (app, tab, w, pilot):
            await w.until(lambda: w.tally.acked >= 1, "the work queue runs anyway")
            await until_screen(
                pilot,
                lambda: any("cannot listen" in n.message for n in app._notifications),
                "one line about the port",
            )
            assert tab.controller.uploads is None and not tab.query_one("#uploads").display
