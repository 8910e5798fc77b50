"""Where broker-sim's settings come from: flag, then environment, then ``.env``, then default.

``.env`` uses the compose file's names (``RABBITMQ_DEFAULT_USER`` / ``_PASS`` / ``_VHOST``), so the
same file that configures ``docker compose up -d`` points broker-sim at that broker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from broker_sim.domain.urls import DEFAULT_URL, BrokerUrlError, build_url, mask_url, names_vhost, with_vhost
from broker_sim.remembered_vhost import memory_path, remembered_vhost

ENV_URL = "BROKER_SIM_URL"
ENV_DATA_DIR = "BROKER_SIM_DATA_DIR"
ENV_VHOST = "BROKER_SIM_VHOST"
ENV_MANAGEMENT_URL = "BROKER_SIM_MANAGEMENT_URL"
OWN_VHOST = "broker-sim"
"""The vhost broker-sim offers to create for itself when the user's own one has no tracing."""


@dataclass(frozen=True)
class Settings:
    """Everything that shapes one run of broker-sim.

    ``trace``: ``True`` turns broker tracing on (``--trace``), ``False`` never touches it,
    ``None`` turns it on only where broker-sim may (a vhost of its own, a broker it started).
    ``broker``: ``auto`` (the URL, else the embedded broker when nothing answers at the default
    URL), ``embedded``, ``local`` (a private RabbitMQ node) or ``docker`` (a throwaway container).
    """

    url: str = DEFAULT_URL
    url_source: str = "default"
    trace: bool | None = None
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    scenarios_dir: Path | None = None
    animation: bool = True
    name_prefix: str = "broker-sim."
    api_port: int | None = None
    broker: str = "auto"
    vhost_source: str = ""
    """Where the URL's vhost came from when not from the URL itself (``--vhost``, …), else ""."""
    own_vhost: str = OWN_VHOST
    """The name of the vhost broker-sim offers to create and run in (tests use their own)."""
    management_url: str | None = None
    """The management API to read (``--management-url``, else ``BROKER_SIM_MANAGEMENT_URL``);
    None: the broker's own host at port 15672, if something answers there."""

    @property
    def masked_url(self) -> str:
        """The broker URL with the password hidden: the only form ever shown or logged."""
        return mask_url(self.url)

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


def default_data_dir() -> Path:
    """The user's data folder for broker-sim (log servers' files, later the embedded broker)."""
    from platformdirs import user_data_path

    return user_data_path("broker-sim", appauthor=False)


def _dotenv(path: Path) -> dict[str, str | None]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return dict(dotenv_values(path))


def url_from_dotenv(path: Path) -> str | None:
    """The broker URL a compose ``.env`` describes, or ``None`` if it names no user."""
    values = _dotenv(path)
    user = values.get("RABBITMQ_DEFAULT_USER")
    if not user:
        return None
    password = values.get("RABBITMQ_DEFAULT_PASS") or ""
    vhost = values.get("RABBITMQ_DEFAULT_VHOST") or "/"
    try:
        port = int(values.get("RABBITMQ_PORT") or 5672)
    except ValueError:
        raise BrokerUrlError(
            f"{path}: RABBITMQ_PORT must be a port number, got {values.get('RABBITMQ_PORT')!r}"
        ) from None
    return build_url(user, password, "localhost", port, vhost)


def _choose_vhost(
    url: str, flag: str | None, env: Mapping[str, str], dotenv: Path, data_dir: Path
) -> tuple[str, str]:
    """The URL with the vhost the settings choose, and where that choice came from ("" for the URL's own)."""
    if names_vhost(url):
        return url, ""  # the URL's vhost wins when it names one
    for value, source in (
        (flag, "--vhost"),
        (env.get(ENV_VHOST), ENV_VHOST),
        (_dotenv(dotenv).get(ENV_VHOST), str(dotenv)),
    ):
        if value:
            return with_vhost(url, value), source
    remembered = remembered_vhost(data_dir, url)
    if remembered:
        return with_vhost(url, remembered), f"remembered in {memory_path(data_dir)}"
    return url, ""


def load_settings(
    url: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    dotenv: Path | None = None,
    data_dir: Path | None = None,
    vhost: str | None = None,
    management_url: str | None = None,
    **overrides: object,
) -> Settings:
    """Settings from a ``--url`` flag, else ``BROKER_SIM_URL``, else ``.env``, else the default.

    The data folder likewise: ``data_dir`` (``--data-dir``), else ``BROKER_SIM_DATA_DIR``, else
    the user's data folder. The vhost is the URL's when it names one; else ``vhost``
    (``--vhost``), else ``BROKER_SIM_VHOST`` (environment, then ``.env``), else the one
    remembered in the data folder for this user and broker, else ``/``. The management API's URL:
    ``management_url`` (``--management-url``), else ``BROKER_SIM_MANAGEMENT_URL``, else None.
    """
    env = os.environ if env is None else env
    dotenv = Path(".env") if dotenv is None else dotenv
    if url:
        chosen, source = url, "--url"
    elif env.get(ENV_URL):
        chosen, source = env[ENV_URL], ENV_URL
    elif (from_file := url_from_dotenv(dotenv)) is not None:
        chosen, source = from_file, str(dotenv)
    else:
        chosen, source = DEFAULT_URL, "default"
    api = management_url or env.get(ENV_MANAGEMENT_URL) or None
    settings = Settings(url=chosen, url_source=source, management_url=api)
    if data_dir is not None:
        settings = settings.with_(data_dir=data_dir)
    elif env.get(ENV_DATA_DIR):
        settings = settings.with_(data_dir=Path(env[ENV_DATA_DIR]))
    chosen, vhost_source = _choose_vhost(chosen, vhost, env, dotenv, settings.data_dir)
    settings = settings.with_(url=chosen, vhost_source=vhost_source)
    return settings.with_(**overrides) if overrides else settings
