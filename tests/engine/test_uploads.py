"""POST /jobs: a real image upload becomes a job that a worker processes; bad uploads publish nothing."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from broker_sim.domain.events import Acked, Nacked, Published
from broker_sim.domain.scenario import Scenario
from broker_sim.domain.scenario_file import load_scenario
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.settings import Settings
from broker_sim.sim import uploads
from broker_sim.sim.engine import Engine
from broker_sim.sim.uploads import MAX_UPLOAD_BYTES, UploadServer, spool_dir
from tests.support import Watcher, running


def png(width: int = 320, height: int = 200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, format="PNG")
    return out.getvalue()


async def upload_png(http: aiohttp.ClientSession, base: str) -> str:
    """POST a PNG to ``base/jobs`` as a multipart form, as curl -F does; returns the job id."""
    form = aiohttp.FormData()
    form.add_field("image", png(), filename="photo.png", content_type="image/png")
    async with http.post(f"{base}/jobs", data=form) as resp:
        assert resp.status == 202
        return str((await resp.json())["job"])


def quiet_desk(workers: int | None = None) -> Scenario:
    """The work queue with its producer at rate 0 (and ``workers`` workers, when given)."""
    scenario = load_scenario(builtin_scenarios_dir() / "1-work-queue.toml")
    consumers = scenario.consumers
    if workers is not None:
        consumers = tuple(replace(c, count=workers) for c in consumers)
    producers = tuple(replace(p, rate=0) for p in scenario.producers)
    return replace(scenario, producers=producers, consumers=consumers, timeline=())


@contextlib.asynccontextmanager
async def open_desk(settings: Settings, scenario: Scenario) -> AsyncIterator[tuple[str, Engine, Watcher]]:
    async with running(scenario, settings) as (engine, w):
        server = UploadServer(
            engine, spool_dir=spool_dir(settings.data_dir), exchange="", routing_key="image-jobs"
        )
        port = await server.start()
        try:
            yield f"http://127.0.0.1:{port}", engine, w
        finally:
            await server.stop()


@pytest.fixture
async def desk(settings: Settings) -> AsyncIterator[tuple[str, Watcher]]:
    async with open_desk(settings, quiet_desk()) as (base, _engine, w):
        yield base, w


async def test_an_uploaded_image_is_processed_and_its_state_reported(desk: tuple[str, Watcher]) -> None:
    base, w = desk
    async with aiohttp.ClientSession() as http:
        job = await upload_png(http, base)
        await w.until(lambda: any(a.message_id == job for a in w.of(Acked)), "the job processed")
        async with http.get(f"{base}/jobs/{job}") as resp:
            state = await resp.json()
    assert state["state"] == "done"
    assert state["result"].startswith("thumbnail+greyscale 128x80")
    assert state["worker"].startswith("worker-")
    published = next(p for p in w.of(Published) if p.message_id == job)
    assert published.body_preview.startswith('{"image": "file:')


async def test_a_raw_body_upload_works_too(desk: tuple[str, Watcher]) -> None:
    base, w = desk
    async with aiohttp.ClientSession() as http, http.post(f"{base}/jobs", data=png(64, 64)) as resp:
        assert resp.status == 202
        job = (await resp.json())["job"]
    await w.until(lambda: any(a.message_id == job for a in w.of(Acked)), "the raw upload processed")


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"this is not an image", 415, "not an image"),
        (b"", 400, "empty"),
        (b"\0" * (MAX_UPLOAD_BYTES + 1), 413, "larger than 10 MB"),
    ],
)
async def test_bad_uploads_get_a_clear_4xx_and_publish_nothing(
    desk: tuple[str, Watcher], body: bytes, status: int, words: str
) -> None:
    base, w = desk
    async with aiohttp.ClientSession() as http, http.post(f"{base}/jobs", data=body) as resp:
        assert resp.status == status
        assert words in (await resp.json())["error"]
    assert w.of(Published) == []


async def test_unknown_job_is_404(desk: tuple[str, Watcher]) -> None:
    base, _ = desk
    async with aiohttp.ClientSession() as http, http.get(f"{base}/jobs/nope") as resp:
        assert resp.status == 404


async def test_a_post_from_another_web_page_is_refused_and_publishes_nothing(
    desk: tuple[str, Watcher],
) -> None:
    base, w = desk
    async with aiohttp.ClientSession() as http:
        headers = {"Origin": "https://evil.example"}
        async with http.post(f"{base}/jobs", data=png(16, 16), headers=headers) as resp:
            assert resp.status == 403
            assert "another web page" in (await resp.json())["error"]
        assert w.of(Published) == []
        async with http.post(f"{base}/jobs", data=png(16, 16), headers={"Origin": base}) as resp:
            assert resp.status == 202  # the server's own page may post


@pytest.mark.parametrize("where", ["outside", "fifo", "link"])
async def test_a_job_naming_a_file_outside_the_spool_is_rejected_with_the_reason(
    settings: Settings, tmp_path: Path, where: str
) -> None:
    spool = spool_dir(settings.data_dir)
    spool.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(8, 8))
    if where == "outside":
        target, words = str(secret), "outside the upload spool"
    elif where == "fifo":  # a worker that opened it would wait for ever for a writer
        os.mkfifo(spool / "pipe.png")
        target, words = str(spool / "pipe.png"), "not a plain file"
    else:  # a link in the spool that points out of it
        (spool / "link.png").symlink_to(secret)
        target, words = str(spool / "link.png"), "outside the upload spool"
    body = json.dumps({"image": f"file:{target}"})
    async with running(quiet_desk(), settings) as (engine, w):
        job = await engine.publish_one("", "image-jobs", body)
        await w.until(lambda: any(n.message_id == job for n in w.of(Nacked)), "the job rejected")
    nack = next(n for n in w.of(Nacked) if n.message_id == job)
    assert words in nack.reason and not nack.requeue
    assert not any(a.message_id == job for a in w.of(Acked))


async def test_a_full_spool_refuses_uploads_with_507_and_keeps_every_queued_jobs_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "SPOOL_FILES", 2)
    async with (
        open_desk(settings, quiet_desk(workers=0)) as (base, engine, w),
        aiohttp.ClientSession() as http,
    ):
        queued = [await upload_png(http, base), await upload_png(http, base)]
        async with http.post(f"{base}/jobs", data=png(16, 16)) as resp:
            assert resp.status == 507
            assert "spool is full" in (await resp.json())["error"]
        assert [p.message_id for p in w.of(Published)] == queued  # nothing published for the refused one
        assert len(list(spool_dir(settings.data_dir).iterdir())) == 2  # no queued job lost its file
        await engine.scale("worker", 1)
        await w.until(lambda: {a.message_id for a in w.of(Acked)} >= set(queued), "the queued jobs done")
        later = await upload_png(http, base)  # a finished job's file made room
        await w.until(lambda: any(a.message_id == later for a in w.of(Acked)), "the later job done")
