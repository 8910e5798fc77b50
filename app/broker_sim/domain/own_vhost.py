"""Words about a vhost of broker-sim's own: why routing is inferred without one, how to get one.

The TUI's header, the headless runner and broker-sim's errors say the same thing in the same words.
"""

from __future__ import annotations


def why_inferred(vhost: str) -> str:
    """Why the exchange → queue hop is inferred on a vhost broker-sim does not own, in a few words."""
    return f"broker-sim leaves tracing off in vhost {vhost!r}, not its own"


def how_to_get_one(vhost: str, user: str) -> str:
    """One line for a user who may not create vhosts: what an administrator runs, or compose."""
    return (
        f"an administrator can make one: rabbitmqctl add_vhost {vhost}; rabbitmqctl set_permissions "
        f"-p {vhost} {user} '.*' '.*' '.*' (or docker compose up -d), then broker-sim --vhost {vhost}"
    )


def headless_advice(vhost: str, own: str, user: str) -> str:
    """What ``broker-sim run`` says when routing is inferred for that reason (it never asks)."""
    return (
        f"{why_inferred(vhost)}. For the broker's own routing, run in vhost {own!r}: "
        f"the TUI's V key makes it if {user!r} is an administrator; else {how_to_get_one(own, user)}"
    )
