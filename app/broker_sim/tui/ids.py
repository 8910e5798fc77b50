"""Widget ids made from scenario names, which may hold characters Textual ids cannot.

A scenario name is an AMQP handle such as ``shop.orders``; a Textual id allows only letters,
digits, ``-`` and ``_``. The escape is one-to-one, so two names never share an id.
"""

from __future__ import annotations

import string

_KEPT = frozenset(string.ascii_letters + string.digits + "-")


def widget_id(prefix: str, name: str) -> str:
    """``prefix`` + ``name`` with every character an id cannot hold (and ``_``) as ``_<hex>_``."""
    return prefix + "".join(c if c in _KEPT else f"_{ord(c):x}_" for c in name)
