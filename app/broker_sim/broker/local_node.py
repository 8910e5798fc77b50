"""A private RabbitMQ node from this machine's ``rabbitmq-server``: own port, data dir, loopback only.

Run as root, ``/usr/sbin/rabbitmq-server`` switches to the ``rabbitmq`` user and then cannot
write a root-owned data dir, so the node is started from ``/usr/lib/rabbitmq/bin`` with a
``HOME`` of its own (its Erlang cookie lives there, and ``rabbitmqctl`` finds it the same way),
its own enabled-plugins file (else it inherits the shared node's plugins and clashes on their
ports), and a config that listens on 127.0.0.1 only, with a generated password.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from broker_sim.broker.rabbitmqctl import RabbitmqctlError, run_rabbitmqctl
from broker_sim.domain.urls import build_url

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
BOOT_TIMEOUT = 90.0
LOOPBACK_DIST = "-kernel inet_dist_use_interface {127,0,0,1}"
"""Erlang flags that keep a node's distribution listener on loopback."""


class LocalNodeError(RabbitmqctlError):
    """The private node could not be started or controlled; the message says why."""


def free_port() -> int:
    """A TCP port nothing listens on now (on loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_rabbit_bin() -> Path | None:
    """The folder holding ``rabbitmq-server`` and ``rabbitmqctl``, or None when RabbitMQ is not installed."""
    for folder in (RABBIT_BIN, Path("/usr/local/lib/rabbitmq/bin")):
        if (folder / "rabbitmq-server").exists():
            return folder
    found = shutil.which("rabbitmq-server")
    return Path(found).parent if found else None


@dataclass
class LocalNode:
    """One private RabbitMQ node; ``start()``, ``restart()``, ``crash_restart()``, ``stop()``."""

    base_dir: Path
    port: int = 0
    name: str = field(default_factory=lambda: f"broker-sim-{secrets.token_hex(3)}@localhost")
    user: str = "broker-sim"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    management_port: int | None = None
    """Run the management plugin (HTTP API) on 127.0.0.1 at this port; None: no plugins at all."""
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The AMQP URL of the node (the password is generated; mask it before showing)."""
        return build_url(self.user, self.password, "127.0.0.1", self.port, "/")

    def _env(self) -> dict[str, str]:
        base = self.base_dir
        return {
            **os.environ,
            "HOME": str(base / "home"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self._dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            # Erlang writes a crash dump into the working directory by default: a node or
            # rabbitmqctl that fails would litter the user's folder (or the checkout).
            "ERL_CRASH_DUMP": str(base / "log" / "erl_crash.dump"),
            # AMQP listens on loopback only (rabbitmq.conf); so must the rest. epmd (when this
            # node is the one that starts it) and Erlang distribution — the node's and
            # rabbitmqctl's — listen on every interface unless told otherwise.
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": LOOPBACK_DIST,
            "RABBITMQ_CTL_ERL_ARGS": LOOPBACK_DIST,
        }

    def _write_config(self) -> None:
        base = self.base_dir
        for sub in ("home", "mnesia", "log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        plugins = "[rabbitmq_management]" if self.management_port else "[]"
        (base / "enabled_plugins").write_text(f"{plugins}.\n")
        (base / "advanced.config").write_text("[].\n")
        (base / "rabbitmq-env.conf").write_text("")
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            f"default_user = {self.user}\n"
            f"default_pass = {self.password}\n"
            "default_vhost = /\n"
            "loopback_users = none\n"
            + (
                f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.management_port}\n"
                if self.management_port
                else ""
            )
        )

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """Run ``rabbitmqctl`` against this node (blocking; call it in a thread from async code)."""
        try:
            return run_rabbitmqctl(
                *args, node=self.name, env=self._env(), exe=self._bin / "rabbitmqctl", timeout=timeout
            )
        except RabbitmqctlError as exc:
            raise LocalNodeError(str(exc)) from None

    def _spawn(self) -> None:
        log = (self.base_dir / "log" / "console.log").open("ab")
        command = [str(self._bin / "rabbitmq-server")]
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            # If broker-sim dies without stopping the node (a closed terminal, kill -9), the
            # kernel sends the server script SIGTERM, and its trap stops RabbitMQ cleanly: no
            # orphaned node keeps running.
            command = [setpriv, "--pdeathsig", "TERM", *command]
        self._process = subprocess.Popen(
            command,
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    async def start(self) -> None:
        """Boot the node (5-8 s here) and wait until it serves AMQP."""
        rabbit_bin = find_rabbit_bin()
        if rabbit_bin is None:
            raise LocalNodeError("RabbitMQ is not installed here (apt-get install rabbitmq-server)")
        self._bin = rabbit_bin
        self.port = self.port or free_port()
        self._dist_port = free_port()
        await asyncio.to_thread(self._write_config)
        self._spawn()
        try:
            await self._await_startup()
        except BaseException:  # a failed or cancelled boot must not leave a node running
            if self._process is not None:
                _kill_group(self._process, signal.SIGKILL)
                self._process = None
            raise

    async def _await_startup(self) -> None:
        try:
            # `wait PIDFILE` waits for the node to write its pid file and then for the app to
            # start; `await_startup` alone fails at once while the node is not registered yet.
            await asyncio.to_thread(
                self.ctl,
                "wait",
                str(self.base_dir / "node.pid"),
                "--timeout",
                str(int(BOOT_TIMEOUT)),
                timeout=BOOT_TIMEOUT + 10,
            )
        except LocalNodeError as exc:
            if self._process is not None and self._process.poll() is not None:
                raise LocalNodeError(
                    f"the node exited while starting (see {self.base_dir / 'log'}): {exc}"
                ) from None
            raise LocalNodeError(f"the node did not start: {exc}") from None

    async def restart(self) -> None:
        """A clean restart of the RabbitMQ application (``stop_app`` / ``start_app``, ~2 s)."""
        await asyncio.to_thread(self.ctl, "stop_app")
        await asyncio.to_thread(self.ctl, "start_app")
        await self._await_startup()

    async def crash_restart(self) -> None:
        """A crash: SIGKILL the whole node, then boot it again on the same data."""
        if self._process is not None:
            _kill_group(self._process, signal.SIGKILL)
            await asyncio.to_thread(self._process.wait)
        self._spawn()
        await self._await_startup()

    async def stop(self) -> None:
        """Stop the node for good (its data dir stays)."""
        if self._process is None:
            return
        try:
            await asyncio.to_thread(self.ctl, "stop", timeout=60)
        except LocalNodeError:
            _kill_group(self._process, signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._process.wait), 30)
        except TimeoutError:
            _kill_group(self._process, signal.SIGKILL)
        self._process = None


def _kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
