"""Finding broker-sim's shipped files (stylesheets, built-in scenarios) installed or in a checkout."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_dir(name: str) -> Path:
    """The folder of a shipped resource (``styles`` or ``simulations``).

    An installed wheel carries them in ``broker_sim/_data/``; an editable install (what
    ``uv run`` uses) does not, so fall back to the top of the checkout.
    """
    packaged = Path(str(files("broker_sim"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"broker-sim's {name}/ folder is missing (looked in {packaged} and {checkout})")


def builtin_scenarios_dir() -> Path:
    """Where the built-in scenarios live."""
    return resource_dir("simulations")


def styles_dir() -> Path:
    """Where the stylesheets live."""
    return resource_dir("styles")
