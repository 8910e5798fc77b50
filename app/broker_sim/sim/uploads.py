"""The work queue's main server, for real: ``POST /jobs`` takes an image and queues a job for it.

It listens on loopback only and refuses posts a web page sends from another origin (a page
in the user's browser could otherwise post to it). An upload is checked with Pillow before
anything is published: a file that is not an image, or is too large, gets a clear 4xx and
nothing reaches the broker. The job body carries a reference to the spooled file
(``file:PATH``), never the pixels. The spool is bounded by refusing uploads when it is full
(507); only files of jobs that are finished are removed to make room, never a queued job's.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
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
from broker_sim.sim.work import spool_dir as spool_dir  # the TUI names the spool through here

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
SPOOL_FILES = 200
"""Most files in the spool: an upload beyond it is refused (507) unless a finished job's file can go."""
SPOOL_BYTES = 500 * 1024 * 1024
"""Most bytes in the spool, on the same terms."""
FINISHED = frozenset({"done", "failed"})
"""Job states after which a job's file is no longer needed by a worker."""


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
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES, middlewares=[self._same_origin])
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

    @web.middleware
    async def _same_origin(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # A browser names the page that sends a request in Origin; curl and scripts send none.
        origin = request.headers.get("Origin")
        if origin is not None and origin not in _own_origins(self.port):
            return _error(
                403,
                f"posts from another web page ({origin}) are refused; use curl or this page's own address",
            )
        return await handler(request)

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
        if (full := await asyncio.to_thread(self._make_room, len(data))) is not None:
            return _error(507, full)
        path = self.spool_dir / f"{uuid.uuid4().hex}.{kind.lower()}"
        await asyncio.to_thread(_write, path, data)
        body = json.dumps({"image": f"file:{path}", "request": "POST /jobs", "upload": name})
        try:
            job_id = await self.engine.publish_one(self.exchange, self.routing_key, body, persistent=True)
        except EngineError as exc:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            return _error(503, str(exc))
        self.jobs[job_id] = Job(job_id, str(path))
        return web.json_response(
            {"job": job_id, "state": "published", "status": f"/jobs/{job_id}"}, status=202
        )

    async def _get(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job"])
        if job is None:
            return _error(
                404,
                "no such job (ids come from POST /jobs; finished jobs are forgotten when the spool is full)",
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

    def _make_room(self, size: int) -> str | None:
        """Make the spool fit one more file of ``size`` bytes; why it cannot, or ``None``.

        Files of finished jobs go first, oldest first (a recorded session that replays them may
        want them, so they stay while there is room). A file whose job may still be queued —
        this run's unfinished jobs, and files an earlier run left — is never removed.
        """
        files = [p for p in self.spool_dir.glob("*") if p.is_file()] if self.spool_dir.is_dir() else []
        count, used = len(files), sum(p.stat().st_size for p in files)
        for job in list(self.jobs.values()):
            if count < SPOOL_FILES and used + size <= SPOOL_BYTES:
                break
            if job.state in FINISHED:  # forgotten with its file: the jobs kept stay as bounded
                gone = Path(job.file)
                if gone.is_file():
                    count, used = count - 1, used - gone.stat().st_size
                    gone.unlink()
                del self.jobs[job.job]
        if count < SPOOL_FILES and used + size <= SPOOL_BYTES:
            return None
        return (
            f"the upload spool is full ({count} files, {used // (1024 * 1024)} MB; limits {SPOOL_FILES} "
            f"and {SPOOL_BYTES // (1024 * 1024)} MB) with jobs still queued; "
            "try again when the workers have caught up"
        )


def _own_origins(port: int) -> set[str]:
    """The origins of this server's own address (a page it served could post back)."""
    return {f"http://{host}:{port}" for host in ("127.0.0.1", "localhost", "[::1]")}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)
