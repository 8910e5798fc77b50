"""Turning the broker's firehose tracing on where broker-sim may, and off only if it turned it on.

Two ways in: the management API's vhost ``tracing`` flag (where the management plugin runs), or
``rabbitmqctl trace_on`` for a node on this machine. Both are blocking calls, run in a thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from broker_sim.broker.handle import node_answers_rabbitmqctl
from broker_sim.broker.management import MANAGEMENT_PORT, api_request
from broker_sim.broker.rabbitmqctl import run_rabbitmqctl
from broker_sim.domain.urls import parse_url

OWN_VHOST_PREFIX = "broker-sim"


def may_trace(url: str, wanted: bool | None, *, started_by_us: bool = False) -> bool:
    """Whether broker-sim may turn tracing on: asked to (``--trace``), our own vhost, or our own broker."""
    if wanted is not None:
        return wanted
    return started_by_us or parse_url(url).vhost.startswith(OWN_VHOST_PREFIX)


@dataclass
class TraceSwitch:
    """Switches tracing for the URL's vhost; remembers whether it was the one to turn it on."""

    url: str
    turned_on: bool = False
    how: str = ""
    node_ctl: Callable[..., str] | None = None
    """``rabbitmqctl`` for the broker's own node, when broker-sim started it (a private node)."""
    management_port: int = MANAGEMENT_PORT
    _node_serves: bool | None = field(default=None, init=False, repr=False)

    async def turn_on(self) -> str | None:
        """Turn tracing on; returns how, or ``None`` when no way worked (the reason is in ``how``)."""
        result = await asyncio.to_thread(self._turn_on_blocking)
        return result

    async def restore(self) -> None:
        """Turn tracing off again, only if this switch turned it on."""
        if self.turned_on:
            await asyncio.to_thread(self._set_blocking, False)
            self.turned_on = False

    def _turn_on_blocking(self) -> str | None:
        tried: list[str] = []
        for name, getter, setter in (
            ("management API", self._api_get, self._api_set),
            ("rabbitmqctl", self._ctl_get, self._ctl_set),
        ):
            try:
                state = getter()
            except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: rabbitmqctl failed
                tried.append(f"{name}: {exc}"[:120])
                continue
            if state:
                self.how = f"tracing was already on ({name})"
                return self.how
            try:
                setter(True)
            except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: rabbitmqctl failed
                tried.append(f"{name}: {exc}"[:120])
                continue
            self.turned_on, self.how = True, f"broker-sim turned tracing on ({name})"
            self._setter = setter
            return self.how
        self.how = "; ".join(tried) or "no way to reach the broker's tracing switch"
        return None

    def _set_blocking(self, on: bool) -> None:
        setter = getattr(self, "_setter", None)
        if setter is not None:
            setter(on)

    # -- management API ------------------------------------------------------------------------

    def _api_request(self, method: str, body: dict[str, object] | None = None) -> dict[str, object]:
        path = f"vhosts/{quote(parse_url(self.url).vhost, safe='')}"
        answer = api_request(self.url, path, method, body, port=self.management_port)
        return answer if isinstance(answer, dict) else {}

    def _api_get(self) -> bool:
        return bool(self._api_request("GET").get("tracing"))

    def _api_set(self, on: bool) -> None:
        self._api_request("PUT", {"tracing": on})

    # -- rabbitmqctl (a node on this machine) ---------------------------------------------------

    def _ctl(self, *args: str) -> str:
        if self.node_ctl is not None:
            return self.node_ctl(*args)
        # The machine's own node, only when it is the one serving this URL: a loopback URL may
        # be another broker (the embedded one, a container), and its tracing is not this node's.
        # Asked once: each answer costs a `rabbitmqctl status` run, and every reconnect asks.
        if self._node_serves is None:
            self._node_serves = node_answers_rabbitmqctl(self.url)
        if not self._node_serves:
            raise ValueError("no RabbitMQ node that rabbitmqctl reaches serves this URL")
        return run_rabbitmqctl(*args, timeout=30)

    def _ctl_get(self) -> bool:
        vhost = parse_url(self.url).vhost
        out = self._ctl("list_vhosts", "name", "tracing", "--formatter", "json")
        for row in json.loads(out or "[]"):
            if row.get("name") == vhost:
                return bool(row.get("tracing"))
        raise ValueError(f"vhost {vhost!r} not found by rabbitmqctl (another node?)")

    def _ctl_set(self, on: bool) -> None:
        self._ctl("trace_on" if on else "trace_off", "-p", parse_url(self.url).vhost)
