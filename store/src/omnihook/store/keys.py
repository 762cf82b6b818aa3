"""Text the databases can hold: bounded keys for indexed columns, and text columns without NUL
characters or lone surrogates.

A webhook's ids and emails become index keys (the room, the contact, the message). PostgreSQL's
B-tree refuses an index entry over about 2.7 KB, so a hostile or broken payload with a 10 KB room
``_id`` would fail its delivery forever. Rocket.Chat's ids are 17 characters; a key longer than
:data:`MAX_KEY_CHARS` is stored as its beginning plus a hash of the whole, the same every time, so
lookups, dedup and per-room order still work.

PostgreSQL's ``text`` cannot hold NUL (``\\u0000``) and neither database can encode a lone
surrogate; both become U+FFFD in text columns (raw bodies are bytes and kept exact).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, overload

__all__ = ["MAX_KEY_CHARS", "bounded_key", "storable_params", "storable_text"]

MAX_KEY_CHARS = 240
"""The longest key stored as is: at most 960 bytes in UTF-8, so two fit in one index entry."""

_KEPT_PREFIX = 200
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@overload
def bounded_key(value: str) -> str: ...
@overload
def bounded_key(value: None) -> None: ...
def bounded_key(value: str | None) -> str | None:
    """``value`` itself when it fits an index, else its first 200 characters, ``…#`` and the
    SHA-256 of the whole (32 hex digits)."""
    if value is None or len(value) <= MAX_KEY_CHARS:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{value[:_KEPT_PREFIX]}…#{digest}"


def storable_text(value: str) -> str:
    """``value`` with NUL characters and lone surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


def storable_params(params: Sequence[Any]) -> tuple[Any, ...]:
    """Query parameters with every string made storable (the same tuple when nothing changes)."""
    values = tuple(params)
    for value in values:
        if type(value) is str and _UNSTORABLE.search(value) is not None:
            return tuple(storable_text(v) if type(v) is str else v for v in values)
    return values
