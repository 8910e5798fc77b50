"""What consumers do with a message: real image work with Pillow, a log line on disk, or a delay.

CPU and file work runs in a thread so the event loop (and the screen) never waits on it.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from broker_sim.domain.scenario import WorkSpec

if TYPE_CHECKING:
    from PIL import Image

MAX_SIDE = 4096
"""Largest generated image side: keeps a job's memory bounded whatever its reference says."""
MAX_FILE_BYTES = 10 * 1024 * 1024
"""Largest spooled file a worker reads: the upload limit."""


class JobRefused(ValueError):
    """A job whose reference a worker will not follow (the reason is shown as the nack's)."""


def spool_dir(data_dir: Path) -> Path:
    """The upload spool: the one folder whose files an image job may name (``file:PATH``)."""
    return data_dir / "uploads"


def read_spooled(path_text: str, spool: Path) -> bytes:
    """The bytes of a file in the spool; anything outside it, or not a plain file, is refused.

    A job's ``file:`` reference comes from whoever can publish: without this a job could make a
    worker read any file, or block its thread for ever on a FIFO.
    """
    root = os.path.realpath(spool)
    real = os.path.realpath(path_text)
    if real == root or os.path.commonpath([root, real]) != root:
        raise JobRefused(f"file:{path_text} is outside the upload spool {spool}; workers read only uploads")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: no swapped-in link
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        raise JobRefused(f"file:{path_text} cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise JobRefused(f"file:{path_text} is not a plain file; workers read only uploads")
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise JobRefused(f"file:{path_text} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    return data


def render_source(ref: str, spool: Path) -> Image.Image:
    """The image a job's reference names: ``gen:SEED:WxH`` (synthesised) or ``file:PATH`` (spooled)."""
    from PIL import Image, ImageDraw

    kind, _, rest = ref.partition(":")
    if kind == "file":
        with Image.open(io.BytesIO(read_spooled(rest, spool))) as opened:
            return opened.convert("RGB")
    if kind != "gen":
        raise ValueError(f"unknown image reference {ref!r}")
    seed_text, _, size = rest.partition(":")
    seed = int(seed_text)
    w, h = (min(MAX_SIDE, max(1, int(v))) for v in size.split("x"))
    base = Image.linear_gradient("L").resize((w, h))
    img = Image.merge(
        "RGB", (base, base.rotate(90 + seed % 180), base.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )
    draw = ImageDraw.Draw(img)
    for i in range(8):
        x, y = (seed * 37 + i * 53) % w, (seed * 91 + i * 29) % h
        draw.ellipse((x, y, x + w // 6, y + h // 6), fill=((seed * 40 + i * 30) % 256, 120, 200))
    return img


def process_image(ref: str, operations: tuple[str, ...], spool: Path) -> str:
    """Apply the operations and encode the result as PNG; returns what was done, in words."""
    from PIL import ImageFilter

    img: Image.Image = render_source(ref, spool)
    for op in operations:
        if op == "thumbnail":
            img.thumbnail((128, 128))
        elif op == "greyscale":
            img = img.convert("L")
        elif op == "blur":
            img = img.filter(ImageFilter.GaussianBlur(2))
        elif op == "rotate":
            img = img.rotate(90, expand=True)
        elif op == "sharpen":
            img = img.filter(ImageFilter.SHARPEN)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return f"{'+'.join(operations)} {img.width}x{img.height} {out.tell() / 1024:.1f} kB"


def append_line(path: Path, line: str) -> None:
    """Store one log line in a log server's own file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")


async def perform(work: WorkSpec, body: bytes, log_file: Path, spool: Path, speed: float = 1.0) -> str:
    """Do one message's work; returns the result in a few words. ``speed`` shortens the delay.

    Image jobs may read files only from ``spool``.
    """
    if work.kind == "image":
        ref = _image_ref(body)
        result = await asyncio.to_thread(process_image, ref, work.operations, spool)
    elif work.kind == "log":
        text = body.decode("utf-8", "replace")
        await asyncio.to_thread(append_line, log_file, f"{time.strftime('%H:%M:%S')} {text}")
        result = f"stored in {log_file.name}"
    else:
        result = "done"
    if work.seconds:
        await asyncio.sleep(work.seconds / speed)
    return result


def _image_ref(body: bytes) -> str:
    try:
        job = json.loads(body)
        return str(job["image"])
    except (ValueError, KeyError, TypeError):
        raise ValueError("an image job needs a JSON body with an 'image' reference") from None
