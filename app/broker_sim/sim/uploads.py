"""The work queue's main server, for real: ``POST /jobs`` takes an image and queues a job for it.

It listens on loopback only. An upload is checked with Pillow before anything is published: a
file that is not an image, or is too large, gets a clear 4xx and nothing reaches the broker.
The job body carries a reference to the spooled file (``file:PATH``), never the pixels.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from broker_sim.domain.events import (
    Abandoned,
    Acked,
    Confirmed,
    Delivered,
    FlowEvent,
    Nacked,
    PublishFailed,
    Returned,
)
from broker_sim.sim.engine import Engine, EngineError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
JOBS_KEPT = 200
"""Uploads whose state (and spooled file) are kept; older ones are forgotten and deleted."""


@dataclass
class Job:
    """What is known about one uploaded job."""

    job: str
    file: str
    state: str = "published"
    worker: str = ""
    result: str = ""
    redelivered: bool = False


class BadUpload(ValueError):
    """An upload refused before publishing; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def check_image(data: bytes) -> str:
    """The image format of an upload (e.g. ``PNG``); raises :class:`BadUpload` when it is not one."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadUpload(400, "the upload is empty: send an image as the body or as the form field 'image'")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise BadUpload(
                    413, f"the image is {img.width}x{img.height}; the limit is {MAX_PIXELS:,} pixels"
                )
            img.verify()
            return str(img.format or "image")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, BadUpload):
            raise
        raise BadUpload(
            415, "not an image Pillow can read (send PNG, JPEG, GIF, WebP, BMP or TIFF)"
        ) from None


class UploadServer:
    """Accepts image uploads over HTTP and publishes one job per image through an engine."""

    def __init__(
        self, engine: Engine, *, spool_dir: Path, exchange: str, routing_key: str, port: int = 0
    ) -> None:
        self.engine = engine
        self.spool_dir = spool_dir
        self.exchange = exchange
        self.routing_key = routing_key
        self.port = port
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._runner: web.AppRunner | None = None
        engine.bus.subscribe(self._on_event)

    async def start(self) -> int:
        """Listen on 127.0.0.1; returns the port (useful with port 0)."""
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.add_routes([web.post("/jobs", self._post), web.get("/jobs/{job}", self._get)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _read_upload(self, request: web.Request) -> tuple[bytes, str]:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            field = form.get("image") or next(
                (v for v in form.values() if isinstance(v, web.FileField)), None
            )
            if not isinstance(field, web.FileField):
                raise BadUpload(
                    400, "the form has no file: send it as the field 'image' (curl -F image=@photo.png)"
                )
            data = await asyncio.to_thread(field.file.read)  # up to 10 MB: off the event loop
            return data, field.filename or "upload"
        return await request.read(), "upload"

    async def _post(self, request: web.Request) -> web.Response:
        try:
            data, name = await self._read_upload(request)
            kind = await asyncio.to_thread(check_image, data)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"the upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        except BadUpload as exc:
            return _error(exc.status, str(exc))
        path = self.spool_dir / f"{uuid.uuid4().hex}.{kind.lower()}"
        await asyncio.to_thread(_write, path, data)
        body = json.dumps({"image": f"file:{path}", "request": "POST /jobs", "upload": name})
        try:
            job_id = await self.engine.publish_one(self.exchange, self.routing_key, body, persistent=True)
        except EngineError as exc:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            return _error(503, str(exc))
        self.jobs[job_id] = Job(job_id, str(path))
        # Keep the latest uploads' files (a recorded session that replays them needs them), and
        # only those: the spool stays bounded.
        while len(self.jobs) > JOBS_KEPT:
            _, old = self.jobs.popitem(last=False)
            await asyncio.to_thread(Path(old.file).unlink, missing_ok=True)
        return web.json_response(
            {"job": job_id, "state": "published", "status": f"/jobs/{job_id}"}, status=202
        )

    async def _get(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job"])
        if job is None:
            return _error(
                404, f"no such job (ids come from POST /jobs; only the latest {JOBS_KEPT} are kept)"
            )
        return web.json_response({k: v for k, v in job.__dict__.items() if k != "file"})

    def _on_event(self, event: FlowEvent) -> None:
        job = self.jobs.get(getattr(event, "message_id", ""))
        if job is None:
            return
        match event:
            case Confirmed():
                job.state = "queued" if job.state == "published" else job.state
            case Returned() | PublishFailed():
                job.state = "failed"
                job.result = getattr(event, "reply_text", "") or getattr(event, "reason", "")
            case Delivered(consumer=c, redelivered=again):
                job.state, job.worker, job.redelivered = "processing", c, job.redelivered or again
            case Abandoned():
                job.state = "queued"
            case Acked(consumer=c, result=result):
                job.state, job.worker, job.result = "done", c, result
            case Nacked(reason=reason, requeue=requeue):
                job.state, job.result = ("queued", "") if requeue else ("failed", reason)
            case _:
                pass


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)
