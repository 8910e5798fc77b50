"""A vhost of broker-sim's own on the user's RabbitMQ: may the user have one, and making it.

broker-sim turns tracing on only in a vhost of its own, so on a user's RabbitMQ (vhost ``/``)
routing is inferred until the tabs run in one. :meth:`VhostAdmin.check` only reads (who the URL's
user is, which vhosts exist, the user's permissions); :meth:`VhostAdmin.create` changes the
broker and is called only after the user said yes. Both go through the management API when it
answers, else through ``rabbitmqctl`` for a node on this machine. Blocking: run them in a thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from broker_sim.broker.management import MANAGEMENT_PORT, NotFound, api_request
from broker_sim.domain.own_vhost import how_to_get_one
from broker_sim.domain.urls import parse_url

EVERYTHING = ".*"
"""The permission pattern the user gets on broker-sim's vhost: configure, write and read anything."""
ADMINISTRATOR = "administrator"


class VhostError(RuntimeError):
    """Neither way in could answer or do it; the message says what each one said."""


@dataclass(frozen=True)
class VhostAccess:
    """What the URL's user may do about a vhost of broker-sim's own, as the broker told it."""

    user: str
    vhost: str
    administrator: bool
    exists: bool
    permitted: bool
    via: str
    """``management API`` or ``rabbitmqctl``: how broker-sim asked, and how it would create it."""

    @property
    def usable(self) -> bool:
        """The vhost exists and the user may use it: switching to it changes nothing on the broker."""
        return self.exists and self.permitted

    @property
    def may_switch(self) -> bool:
        """broker-sim can get the user into the vhost: it is usable, or the user may create it."""
        return self.usable or self.administrator


class _Way(Protocol):
    name: str

    def is_administrator(self, user: str) -> bool: ...
    def exists(self, vhost: str, administrator: bool) -> bool: ...
    def permitted(self, vhost: str, user: str, administrator: bool) -> bool: ...
    def create(self, vhost: str, user: str, exists: bool) -> None: ...


class _ManagementApi:
    """The management plugin's HTTP API, as the URL's user (an administrator sees every vhost)."""

    name = "management API"

    def __init__(self, url: str, port: int) -> None:
        self.url = url
        self.port = port

    def _ask(self, path: str, method: str = "GET", body: dict[str, object] | None = None) -> object:
        return api_request(self.url, path, method, body, port=self.port)

    def is_administrator(self, user: str) -> bool:
        me = self._ask("whoami")
        tags = me.get("tags", []) if isinstance(me, dict) else []
        # 3.10 answers a list; older versions a comma-separated string
        return ADMINISTRATOR in (tags.split(",") if isinstance(tags, str) else tags)

    def _visible(self) -> set[str]:
        # a user who is not an administrator sees only the vhosts it may use
        answer = self._ask("vhosts")
        return (
            {str(v.get("name")) for v in answer if isinstance(v, dict)} if isinstance(answer, list) else set()
        )

    def exists(self, vhost: str, administrator: bool) -> bool:
        return vhost in self._visible()

    def permitted(self, vhost: str, user: str, administrator: bool) -> bool:
        if not administrator:
            return vhost in self._visible()
        try:
            self._ask(f"permissions/{quote(vhost, safe='')}/{quote(user, safe='')}")
        except NotFound:
            return False
        return True

    def create(self, vhost: str, user: str, exists: bool) -> None:
        name = quote(vhost, safe="")
        if not exists:
            self._ask(f"vhosts/{name}", "PUT", {})
        everything: dict[str, object] = {"configure": EVERYTHING, "write": EVERYTHING, "read": EVERYTHING}
        self._ask(f"permissions/{name}/{quote(user, safe='')}", "PUT", everything)


class _Rabbitmqctl:
    """``rabbitmqctl`` for the node serving the URL (it sees everything; the user's tags decide)."""

    name = "rabbitmqctl"

    def __init__(self, ctl: Callable[..., str]) -> None:
        self.ctl = ctl

    def _rows(self, command: str, *args: str) -> list[dict[str, object]]:
        rows = json.loads(self.ctl(command, "--formatter", "json", *args) or "[]")
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    def is_administrator(self, user: str) -> bool:
        for row in self._rows("list_users"):
            if row.get("user") == user:
                tags = row.get("tags") or []
                return ADMINISTRATOR in (tags if isinstance(tags, list) else str(tags).strip("[]").split(","))
        return False

    def exists(self, vhost: str, administrator: bool) -> bool:
        return any(row.get("name") == vhost for row in self._rows("list_vhosts", "name"))

    def permitted(self, vhost: str, user: str, administrator: bool) -> bool:
        return any(row.get("vhost") == vhost for row in self._rows("list_user_permissions", "--", user))

    def create(self, vhost: str, user: str, exists: bool) -> None:
        if not exists:
            self.ctl("add_vhost", "--", vhost)
        # `--vhost=` and `--`: a name that starts with "-" is a name, not an option.
        self.ctl("set_permissions", f"--vhost={vhost}", "--", user, EVERYTHING, EVERYTHING, EVERYTHING)


@dataclass
class VhostAdmin:
    """Asks about, and makes, a vhost of broker-sim's own on the broker at ``url``, for its user.

    ``ctl`` is ``rabbitmqctl`` for the node serving the URL, when broker-sim has one (the broker
    handle's ``ctl``); without it only the management API is tried.
    """

    url: str
    ctl: Callable[..., str] | None = None
    management_port: int = MANAGEMENT_PORT

    def _ways(self) -> list[_Way]:
        ways: list[_Way] = [_ManagementApi(self.url, self.management_port)]
        if self.ctl is not None:
            ways.append(_Rabbitmqctl(self.ctl))
        return ways

    def check(self, vhost: str) -> VhostAccess:
        """What the user may do about ``vhost`` (reads only); VhostError when no way could tell."""
        user = parse_url(self.url).user
        tried: list[str] = []
        for way in self._ways():
            try:
                administrator = way.is_administrator(user)
                exists = way.exists(vhost, administrator)
                permitted = exists and way.permitted(vhost, user, administrator)
            except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: rabbitmqctl failed
                tried.append(f"{way.name}: {exc}"[:120])
                continue
            return VhostAccess(user, vhost, administrator, exists, permitted, way.name)
        raise VhostError(f"cannot tell what {user!r} may do here ({'; '.join(tried) or 'no way to ask'})")

    def create(self, vhost: str) -> str:
        """Create ``vhost`` if missing and give the user every permission on it; says what it did.

        Only for an administrator (checked again first); nothing changes when the vhost is
        already usable. Raises VhostError, in words, when the user may not or a step failed.
        """
        access = self.check(vhost)
        if access.usable:
            return f"vhost {vhost!r} exists and {access.user!r} may use it: nothing to change"
        if not access.administrator:
            raise VhostError(f"{access.user!r} is not an administrator: {how_to_get_one(vhost, access.user)}")
        way = next(w for w in self._ways() if w.name == access.via)
        try:
            way.create(vhost, access.user, access.exists)
        except (OSError, ValueError, RuntimeError) as exc:
            raise VhostError(f"could not create vhost {vhost!r} ({way.name}): {exc}"[:300]) from None
        made = "gave" if access.exists else "created it and gave"
        return f"vhost {vhost!r}: {made} {access.user!r} every permission on it ({way.name})"
