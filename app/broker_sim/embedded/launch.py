"""Run the embedded broker as a child process: :class:`EmbeddedBroker` (start, stop, kill -9, restart).

The child is ``python -m broker_sim broker --port N --data-dir D --user U`` with the password in its
environment; it prints the URL it listens on (password masked) and this class reads the port from
that line. The child exits by itself if the parent dies (it watches its stdin). Its log goes to
``<data dir>/broker.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from broker_sim.embedded.main import (
    DEFAULT_USER,
    MANAGEMENT_PREFIX,
    PASSWORD_ENV,
    READY_PREFIX,
    WATCH_STDIN_ENV,
)

START_TIMEOUT = 30.0


class BrokerStartError(RuntimeError):
    """The child broker did not come up (its last log lines are in the message)."""


class EmbeddedBroker:
    """An embedded broker in a child process, on a free loopback port.

    ``await start()``, then connect to :attr:`url`; ``await restart()`` keeps the port (so clients
    reconnect to the same URL) and the data dir (so durable state survives); ``await kill()`` is a
    crash (SIGKILL); ``await stop()`` is a clean shutdown. The sync ``*_sync`` methods do the same
    for code without a running loop (pytest session fixtures).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        user: str = DEFAULT_USER,
        password: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        options: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
        management: bool = False,
        consumer_timeout_ms: int | None = None,
    ) -> None:
        self.options = list(options)
        """More ``broker-sim broker`` options (``--disk-free-limit 2MB``…)."""
        self.environment = dict(environment or {})
        """More environment for the child (the fault suite's ``BROKER_SIM_EMBEDDED_FAULTS``)."""
        self.data_dir = data_dir
        # With ``management``, the child serves the read-only management API; its port (0 until the
        # first start) is kept across restarts like the AMQP port.
        self.management_port: int | None = 0 if management else None
        self.consumer_timeout_ms = consumer_timeout_ms
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.host = host
        self.port = port
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """``amqp://user:password@host:port/`` of the running broker."""
        if not self.port:
            raise RuntimeError("the embedded broker has not started yet")
        return f"amqp://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}/"

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the child is alive."""
        return self.pid is not None

    async def start(self) -> None:
        """Start the child and wait until it listens."""
        await asyncio.to_thread(self.start_sync)

    async def stop(self) -> None:
        """Clean shutdown (SIGTERM): clients get 320 CONNECTION_FORCED, the store is flushed."""
        await asyncio.to_thread(self.stop_sync)

    async def kill(self) -> None:
        """Crash it (SIGKILL): only what was fsync'd (everything confirmed) survives."""
        await asyncio.to_thread(self.kill_sync)

    async def restart(self, *, crash: bool = False) -> None:
        """Stop (or kill, with ``crash``) and start again on the same port and data dir."""
        if crash:
            await self.kill()
        else:
            await self.stop()
        await self.start()

    def start_sync(self) -> None:
        """:meth:`start` without a loop."""
        if self.running:
            return
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "broker_sim",
            "broker",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--user",
            self.user,
            *self.options,
        ]
        if self.management_port is not None:
            command += ["--management-port", str(self.management_port)]
        if self.consumer_timeout_ms is not None:
            command += ["--consumer-timeout", str(self.consumer_timeout_ms)]
        env = {**os.environ, **self.environment, PASSWORD_ENV: self.password, WATCH_STDIN_ENV: "1"}
        # The log names queues and messages' ids: only the user may read it.
        fd = os.open(self.data_dir / "broker.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        log = open(fd, "a")  # noqa: SIM115 - the child owns it from here
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                start_new_session=True,  # Ctrl-C in the TUI's terminal is for the TUI, not the broker
            )
        finally:
            log.close()
        self._process = process
        timer = threading.Timer(START_TIMEOUT, process.kill)
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith(MANAGEMENT_PREFIX):
                    self.management_port = int(line.rsplit(":", 1)[1].split("/", 1)[0])
                if line.startswith(READY_PREFIX):
                    self.port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
                    break
            else:
                raise BrokerStartError(f"the embedded broker exited: {self._log_tail()}")
        finally:
            timer.cancel()
        # Keep reading its stdout so the child never blocks on a full pipe.
        threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()

    def stop_sync(self) -> None:
        """:meth:`stop` without a loop."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close(process)

    def kill_sync(self) -> None:
        """:meth:`kill` without a loop."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        self._close(process)

    def _close(self, process: subprocess.Popen[str]) -> None:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        self._process = None

    def _log_tail(self) -> str:
        # The log is appended to across runs: only this start's last line says why it failed.
        with contextlib.suppress(OSError):
            lines = (self.data_dir / "broker.log").read_text().strip().splitlines()
            if lines:
                return lines[-1].removeprefix("broker-sim broker: ")
        return f"(nothing in {self.data_dir / 'broker.log'})"


def _drain(stream: object) -> None:
    with contextlib.suppress(OSError, ValueError):
        for _ in stream:  # type: ignore[attr-defined]
            pass
