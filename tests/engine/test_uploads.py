"""POST /jobs: a real image upload becomes a job that a worker processes; bad uploads publish nothing."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from PIL import Image

from broker_sim.domain.events import Acked, Published
from broker_sim.domain.scenario_file import load_scenario
from broker_sim.resources import builtin_scenarios_dir
from broker_sim.settings import Settings
from broker_sim.sim.uploads import MAX_UPLOAD_BYTES, UploadServer
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


@pytest.fixture
async def desk(settings: Settings) -> AsyncIterator[tuple[str, Watcher]]:
    from dataclasses import replace

    scenario = load_scenario(builtin_scenarios_dir() / "1-work-queue.toml")
    quiet = replace(scenario, producers=tuple(replace(p, rate=0) for p in scenario.producers), timeline=())
    async with running(quiet, settings) as (engine, w):
        server = UploadServer(
            engine, spool_dir=settings.data_dir / "uploads", exchange="", routing_key="image-jobs"
        )
        port = await server.start()
        try:
            yield f"http://127.0.0.1:{port}", w
        finally:
            await server.stop()


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
