"""Turning the broker's firehose tracing on where broker-sim may, and off only if it turned it on.

Two ways in: the management API's vhost ``tracing`` flag (where the management plugin runs), or
``rabbitmqctl trace_on`` for a node on this machine. Both are blocking calls, run in a thread.

The policy, for every engine (tab) of every broker-sim process:
- on a broker broker-sim started, or a vhost of its own, tracing stays on: nothing else there
  needs it off, and turning it off under another tab would freeze that tab's routing;
- on a user's vhost (``--trace``) it is turned off only by the process that turned it on
  (remembered per vhost for the whole process, not per engine), and only once nothing is bound
  to the trace exchange any more — another tab's or another broker-sim's trace queue still
  reading it keeps it on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from broker_sim.broker.handle import node_answers_rabbitmqctl
from broker_sim.broker.management import MANAGEMENT_PORT, api_request
from broker_sim.broker.rabbitmqctl import run_rabbitmqctl
from broker_sim.domain.urls import parse_url

OWN_VHOST_PREFIX = "broker-sim"
TRACE_EXCHANGE = "amq.rabbitmq.trace"

_turned_on_here: dict[str, TraceSwitch] = {}
"""Vhosts (host:port/vhost) whose tracing this process turned on, with the switch that did it."""


def may_trace(url: str, wanted: bool | None, *, started_by_us: bool = False) -> bool:
    """Whether broker-sim may turn tracing on: asked to (``--trace``), our own vhost, or our own broker."""
    if wanted is not None:
        return wanted
    return owns_tracing(url, started_by_us=started_by_us)


def owns_tracing(url: str, *, started_by_us: bool) -> bool:
    """Whether tracing there is broker-sim's own (its broker, or a vhost of its own): it stays on."""
    return started_by_us or parse_url(url).vhost.startswith(OWN_VHOST_PREFIX)


def _vhost_key(url: str) -> str:
    address = parse_url(url)
    return f"{address.host}:{address.port}/{address.vhost}"


@dataclass
class TraceSwitch:
    """Switches tracing for the URL's vhost; remembers whether it was the one to turn it on."""

    url: str
    turned_on: bool = False
    how: str = ""
    node_ctl: Callable[..., str] | None = None
    """``rabbitmqctl`` for the broker's own node, when broker-sim started it (a private node)."""
    management_port: int = MANAGEMENT_PORT
    owned: bool = False
    """Tracing here is broker-sim's own (see :func:`owns_tracing`): never turned off."""
    _node_serves: bool | None = field(default=None, init=False, repr=False)

    async def turn_on(self) -> str | None:
        """Turn tracing on; returns how, or ``None`` when no way worked (the reason is in ``how``)."""
        result = await asyncio.to_thread(self._turn_on_blocking)
        return result

    async def restore(self) -> None:
        """Turn tracing off again if this process turned it on and nothing reads the trace any more.

        Where tracing is broker-sim's own (``owned``) it stays on.
        """
        key = _vhost_key(self.url)
        switch = _turned_on_here.get(key)
        if self.owned or switch is None:
            return
        if await asyncio.to_thread(switch._trace_readers):
            return  # another tab's or another process's trace queue still reads it
        await asyncio.to_thread(switch._set_blocking, False)
        switch.turned_on = False
        _turned_on_here.pop(key, None)

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
            self._readers = self._api_readers if name == "management API" else self._ctl_readers
            _turned_on_here[_vhost_key(self.url)] = self
            return self.how
        self.how = "; ".join(tried) or "no way to reach the broker's tracing switch"
        return None

    def _set_blocking(self, on: bool) -> None:
        setter = getattr(self, "_setter", None)
        if setter is not None:
            setter(on)

    def _trace_readers(self) -> int:
        """Queues bound to the trace exchange of this vhost (asked the way tracing was turned on).

        When the broker cannot be asked, the answer is "someone may": tracing is left on rather
        than turned off under a reader.
        """
        try:
            return int(self._readers())
        except (OSError, ValueError, RuntimeError):
            return 1

    # -- management API ------------------------------------------------------------------------

    def _api_request(
        self, method: str, body: dict[str, object] | None = None, path: str = "vhosts/{vhost}"
    ) -> Any:
        vhost = quote(parse_url(self.url).vhost, safe="")
        return api_request(self.url, path.format(vhost=vhost), method, body, port=self.management_port)

    def _api_get(self) -> bool:
        return bool(self._api_request("GET").get("tracing"))

    def _api_set(self, on: bool) -> None:
        self._api_request("PUT", {"tracing": on})

    def _api_readers(self) -> int:
        bindings = self._api_request("GET", path=f"exchanges/{{vhost}}/{TRACE_EXCHANGE}/bindings/source")
        return len(bindings) if isinstance(bindings, list) else 1

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
        # `--vhost=`: a vhost named "-x" would otherwise be read as options.
        self._ctl("trace_on" if on else "trace_off", f"--vhost={parse_url(self.url).vhost}")

    def _ctl_readers(self) -> int:
        vhost = parse_url(self.url).vhost
        out = self._ctl(
            "list_bindings", f"--vhost={vhost}", "source_name", "destination_name", "--formatter", "json"
        )
        return sum(1 for row in json.loads(out or "[]") if row.get("source_name") == TRACE_EXCHANGE)
