"""Which broker broker-sim runs on, and how (or whether) it can restart it.

A :class:`BrokerHandle` is what the engine and the UI know of a broker: its URL, what kind it
is, whether broker-sim started it, and a restart that does the right thing for that kind.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from broker_sim.broker.rabbitmqctl import RabbitmqctlError, run_rabbitmqctl
from broker_sim.domain.urls import mask_url, parse_url


class RestartUnavailable(RuntimeError):
    """broker-sim cannot restart this broker itself; the message says what the user can do."""


@dataclass
class BrokerHandle:
    """A broker reachable at ``url``; subclasses know how to restart their kind."""

    url: str
    kind: str = "RabbitMQ"
    started_by_us: bool = False
    restart_how: str = "restart it yourself; broker-sim reconnects by itself"
    needs_confirmation: bool = False
    wakers: set[asyncio.Event] = field(default_factory=set, repr=False, compare=False)
    """Set by :meth:`wake_engines`: each engine on this broker waits on one between attempts."""
    management_url: str | None = field(default=None, compare=False)
    """The base URL of the broker's management API (``http://127.0.0.1:15672/``) where it has one
    broker-sim may read, as the broker URL's user (or the user given in it); else None."""
    management_missing: str = field(default="not looked for", compare=False)
    """Why :attr:`management_url` is None, in a few words (shown in the inspector)."""

    def find_management(self, given: str | None = None) -> None:
        """Look for the management API (blocking: call it in a thread); ``given``: the user's URL."""
        from broker_sim.broker.management import find_api

        self.management_url, self.management_missing = find_api(self.url, given)

    def wake_engines(self) -> None:
        """Tell every engine on this broker that it is back from a restart: they reconnect now,
        not after their backoff (whoever restarted it: a tab, the Durability tab, a timeline)."""
        for event in self.wakers:
            event.set()

    @property
    def can_restart(self) -> bool:
        """Whether broker-sim can restart this broker (maybe after the user confirms)."""
        return type(self).restart is not BrokerHandle.restart

    @property
    def masked_url(self) -> str:
        """The URL safe to show."""
        return mask_url(self.url)

    @property
    def ctl(self) -> Callable[..., str] | None:
        """A ``rabbitmqctl`` for this broker's node, when broker-sim has one (used for tracing)."""
        return None

    async def restart(self, *, crash: bool = False) -> None:
        """Restart the broker (``crash``: kill it hard where that is possible)."""
        raise RestartUnavailable(
            f"broker-sim cannot restart the broker at {self.masked_url}: restart it yourself, "
            "broker-sim waits and reconnects by itself"
        )

    async def close(self) -> None:
        """Stop the broker if broker-sim started it."""


class NodeOnThisMachine(BrokerHandle):
    """The machine's own RabbitMQ node, restarted with ``rabbitmqctl stop_app``/``start_app``.

    It may be shared with other programs, so the UI asks before restarting it.
    """

    def __init__(self, url: str) -> None:
        super().__init__(
            url,
            "RabbitMQ on this machine",
            False,
            "rabbitmqctl stop_app / start_app (asks you first: others may use it)",
            True,
        )

    @property
    def ctl(self) -> Callable[..., str] | None:
        return _system_ctl

    async def restart(self, *, crash: bool = False) -> None:
        await asyncio.to_thread(_system_ctl, "stop_app")
        await asyncio.to_thread(_system_ctl, "start_app")
        await asyncio.to_thread(_system_ctl, "await_startup")


def _system_ctl(*args: str) -> str:
    try:
        return run_rabbitmqctl(*args, timeout=120)
    except RabbitmqctlError as exc:
        raise RestartUnavailable(str(exc)) from None


def node_answers_rabbitmqctl(url: str) -> bool:
    """True when the URL is on this machine and ``rabbitmqctl`` reaches a node serving its port."""
    if not parse_url(url).is_loopback or shutil.which("rabbitmqctl") is None:
        return False
    try:
        out = run_rabbitmqctl("status", "--formatter", "json", timeout=30)
    except RabbitmqctlError:
        return False
    return f'"port":{parse_url(url).port}' in out.replace(" ", "")


class EmbeddedHandle(BrokerHandle):
    """broker-sim's own broker, in a child process it started."""

    def __init__(self, data_dir: Path, *, options: Sequence[str] = ()) -> None:
        """``options``: more ``broker-sim broker`` options (``--disk-free-limit 8MB``…)."""
        from broker_sim.embedded.launch import EmbeddedBroker

        # with its read-only management API, on loopback, for the broker's own (generated) user
        self.broker = EmbeddedBroker(data_dir, options=options, management=True)
        self.data_dir = data_dir
        super().__init__("", "embedded broker", True, "stop and start its child process (or kill -9 it)")

    async def start(self) -> None:
        """Start the child and learn its URL and its management API's."""
        await self.broker.start()
        self.url = self.broker.url
        self.management_url = f"http://127.0.0.1:{self.broker.management_port}/"
        self.management_missing = ""

    async def restart(self, *, crash: bool = False) -> None:
        await self.broker.restart(crash=crash)

    async def close(self) -> None:
        await self.broker.stop()


class LocalNodeHandle(BrokerHandle):
    """A private RabbitMQ node broker-sim started from this machine's ``rabbitmq-server``."""

    def __init__(self, data_dir: Path) -> None:
        import tempfile

        from broker_sim.broker.local_node import LocalNode

        # A fresh node (and data dir) per run, removed on close: the lab is about restarts
        # within a run, and old nodes' files would only pile up.
        (data_dir / "local-nodes").mkdir(parents=True, exist_ok=True)
        self.base_dir = Path(tempfile.mkdtemp(prefix="node-", dir=data_dir / "local-nodes"))
        self.node = LocalNode(self.base_dir)
        super().__init__(
            "", "private RabbitMQ node", True, "rabbitmqctl stop_app / start_app (or kill -9 it)"
        )
        self.management_missing = "a private node runs without plugins (it boots faster)"

    async def start(self) -> None:
        """Boot the node (a few seconds)."""
        await self.node.start()
        self.url = self.node.url

    @property
    def ctl(self) -> Callable[..., str] | None:
        return self.node.ctl

    async def restart(self, *, crash: bool = False) -> None:
        await (self.node.crash_restart() if crash else self.node.restart())

    async def close(self) -> None:
        await self.node.stop()
        await asyncio.to_thread(shutil.rmtree, self.base_dir, True)


class DockerContainerHandle(BrokerHandle):
    """A RabbitMQ container found by the port it publishes (a compose service, say)."""

    def __init__(self, url: str, container: object) -> None:
        name = getattr(container, "name", "container")
        super().__init__(
            url,
            f"RabbitMQ in Docker container {name}",
            False,
            f"docker restart {name} (asks you first)",
            True,
        )
        self.container = container

    async def restart(self, *, crash: bool = False) -> None:
        action = getattr(self.container, "kill" if crash else "restart")
        await asyncio.to_thread(action)
        if crash:
            await asyncio.to_thread(self.container.start)  # type: ignore[attr-defined]


def find_container_by_port(port: int) -> object | None:
    """The running Docker container that publishes ``port``, or None (no SDK, no engine, no match)."""
    try:
        import docker
    except ImportError:
        return None
    try:
        client = docker.from_env(timeout=2)
        for container in client.containers.list():
            for bindings in (container.ports or {}).values():
                if any(str(b.get("HostPort")) == str(port) for b in bindings or []):
                    found: object = container
                    return found
    except Exception:  # no engine, no permission: then there is simply no container to restart
        return None
    return None


class ContainerHandle(BrokerHandle):
    """A throwaway RabbitMQ container (testcontainers), where a Docker engine runs."""

    IMAGE = "rabbitmq:3.13.7-management"

    def __init__(self) -> None:
        super().__init__("", "RabbitMQ container", True, "restart the container")
        self.management_missing = "broker-sim maps only the container's AMQP port"
        self.container: object | None = None

    async def start(self) -> None:
        """Start the container; needs the ``docker`` extra and a running Docker engine."""
        try:
            from testcontainers.rabbitmq import RabbitMqContainer
        except ImportError:
            raise RestartUnavailable(
                "--broker docker needs the docker extra: "
                "uv sync --extra docker (or pip install 'broker-sim[docker]')"
            ) from None
        import secrets

        password = secrets.token_urlsafe(12)
        container = RabbitMqContainer(self.IMAGE, username="broker-sim", password=password)
        try:
            await asyncio.to_thread(container.start)
        except Exception as exc:  # docker's errors have no common base worth naming
            raise RestartUnavailable(f"could not start a RabbitMQ container: {exc}") from None
        self.container = container
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(5672))
        from broker_sim.domain.urls import build_url

        self.url = build_url("broker-sim", password, host, port)

    async def restart(self, *, crash: bool = False) -> None:
        wrapped = getattr(self.container, "get_wrapped_container", None)
        if wrapped is None:
            raise RestartUnavailable("the container is not running")
        docker_container = wrapped()
        if crash:
            await asyncio.to_thread(docker_container.kill)
            await asyncio.to_thread(docker_container.start)
        else:
            await asyncio.to_thread(docker_container.restart)
        # Docker may publish the port on another host port after a restart: read it again.
        await asyncio.to_thread(docker_container.reload)
        port = int(docker_container.ports["5672/tcp"][0]["HostPort"])
        parts = parse_url(self.url)
        self.url = self.url.replace(f":{parts.port}/", f":{port}/", 1)

    async def close(self) -> None:
        stop = getattr(self.container, "stop", None)
        if stop is not None:
            await asyncio.to_thread(stop)
