"""The vhost a user chose for a broker, remembered in the data dir so the next start goes there.

One small JSON file, ``<data dir>/vhosts.json``, maps ``user@host:port`` to a vhost name: a
choice is used again only for the same login on the same broker.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from broker_sim.domain.urls import BrokerUrlError, parse_url

FILE_NAME = "vhosts.json"


def memory_path(data_dir: Path) -> Path:
    """Where the remembered choices live."""
    return data_dir / FILE_NAME


def broker_key(url: str) -> str:
    """Whose choice on which broker: ``user@host:port``."""
    address = parse_url(url)
    return f"{address.user}@{address.host}:{address.port}"


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise BrokerUrlError(f"{path} cannot be read ({exc}); delete it and choose the vhost again") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise BrokerUrlError(f"{path} is not a map of broker to vhost; delete it and choose the vhost again")
    return data


def remembered_vhost(data_dir: Path, url: str) -> str | None:
    """The vhost remembered for the URL's user and broker, or None."""
    return _read(memory_path(data_dir)).get(broker_key(url))


def remember_vhost(data_dir: Path, url: str, vhost: str) -> Path:
    """Remember ``vhost`` for the URL's user and broker; returns the file written."""
    path = memory_path(data_dir)
    choices = _read(path)
    choices[broker_key(url)] = vhost
    path.parent.mkdir(parents=True, exist_ok=True)
    # written aside and renamed, so a crash mid-write never leaves a file the next start refuses
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(choices, indent=2) + "\n")
    partial.replace(path)
    return path
