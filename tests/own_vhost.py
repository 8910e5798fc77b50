"""The user's own RabbitMQ, as a test makes it: a vhost not broker-sim's, an administrator and
a user who is not, and the name of the vhost broker-sim may create. Everything is removed after.

Names are fresh per test: other test runs use the same node at the same time.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker_sim.broker.rabbitmqctl import RabbitmqctlError
from broker_sim.domain.events import Routed, TracingChanged
from broker_sim.domain.urls import build_url, parse_url, with_vhost
from tests.support import Watcher, missing_rabbitmq, rabbitmqctl, test_url, unreachable_reason


@dataclass(frozen=True)
class UsersRabbitMQ:
    """URLs into a vhost that is not broker-sim's (tracing off), for an administrator and for a
    user who is not one; ``own`` is the vhost broker-sim is to offer (it does not exist yet)."""

    admin_url: str
    user_url: str
    plain: str
    own: str
    user: str

    def vhosts(self) -> dict[str, bool]:
        """This test's vhosts on the node, with their tracing flag."""
        rows = json.loads(rabbitmqctl("list_vhosts", "name", "tracing", "--formatter", "json"))
        return {r["name"]: bool(r["tracing"]) for r in rows if r["name"] in (self.plain, self.own)}

    def definitions(self) -> dict[str, list[object]]:
        """The node's definitions that concern this test's vhosts and user (others' runs change the rest).

        rabbitmqctl runs as the rabbitmq user: it cannot write into pytest's 0700 folders, so it
        gets a folder of its own in /tmp that it may enter.
        """
        folder = Path(tempfile.mkdtemp(prefix="bsim-defs-"))
        try:
            folder.chmod(0o777)
            path = folder / "definitions.json"
            rabbitmqctl("export_definitions", str(path))
            everything = json.loads(path.read_text())
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        mine = {self.plain, self.own, self.user}
        return {
            key: sorted(
                (
                    entry
                    for entry in everything.get(key, [])
                    if isinstance(entry, dict) and mine & {entry.get(f) for f in ("name", "vhost", "user")}
                ),
                key=json.dumps,
            )
            for key in (
                "vhosts",
                "users",
                "permissions",
                "topic_permissions",
                "parameters",
                "policies",
                "queues",
                "exchanges",
                "bindings",
            )
        }


@pytest.fixture
def users_rabbitmq() -> Iterator[UsersRabbitMQ]:
    """The machine's RabbitMQ as a user has it; this test's vhosts and user are deleted after."""
    url = test_url()
    reason = unreachable_reason(url)
    if reason:
        missing_rabbitmq(reason)
    tag = uuid.uuid4().hex[:8]
    plain, own, user = f"users-own-{tag}", f"broker-sim-t{tag}", f"-bsim-user-{tag}"
    password = secrets.token_urlsafe(12)
    admin = parse_url(url).user
    try:
        rabbitmqctl("add_vhost", plain)
        rabbitmqctl("set_permissions", "-p", plain, admin, ".*", ".*", ".*")
        rabbitmqctl("add_user", "--", user, password)  # a password may start with "-"
        rabbitmqctl("set_permissions", f"--vhost={plain}", "--", user, ".*", ".*", ".*")
    except RabbitmqctlError as exc:
        missing_rabbitmq(f"cannot set up a user's RabbitMQ with rabbitmqctl ({exc})")
    try:
        yield UsersRabbitMQ(
            admin_url=with_vhost(url, plain),
            user_url=build_url(user, password, "127.0.0.1", parse_url(url).port, plain),
            plain=plain,
            own=own,
            user=user,
        )
    finally:
        for args in (("delete_vhost", plain), ("delete_vhost", own), ("delete_user", "--", user)):
            with contextlib.suppress(RabbitmqctlError):  # the own vhost exists only after a yes
                rabbitmqctl(*args)


async def until_traced_after(w: Watcher, seen: int) -> None:
    """Wait until, after the first ``seen`` events, the engine traced routing and a message was traced."""
    await w.until(
        lambda: any(isinstance(e, TracingChanged) and e.traced for e in w.events[seen:]),
        "routing traced in the new vhost",
    )
    await w.until(
        lambda: any(isinstance(e, Routed) and e.source == "trace" for e in w.events[seen:]),
        "a message routed as the broker traced it",
    )
