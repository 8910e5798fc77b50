"""The image operations a work-queue job may ask for, and what each does in words."""

from __future__ import annotations

OPERATIONS: dict[str, str] = {
    "thumbnail": "shrink to fit 128x128",
    "greyscale": "convert to shades of grey",
    "blur": "Gaussian blur, radius 2",
    "rotate": "rotate 90 degrees",
    "sharpen": "sharpen edges",
}
