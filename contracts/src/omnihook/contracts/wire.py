"""The base of every payload model: keep unknown fields, dump back to the exact wire document."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from .dates import format_date
from .lenient_json import TooDeep

__all__ = ["WireModel", "encode_json"]


class WireModel(BaseModel):
    """A part of a Rocket.Chat payload.

    Python attributes are snake_case; the wire names (``_id``, ``createdAt``…) are aliases and
    both are accepted when building a model. Unknown fields are kept (``model_extra``) so a newer
    Rocket.Chat's additions survive a round trip. Dumping writes only the keys that were present
    (or set), so ``null`` stays ``null`` and an absent key stays absent.
    """

    model_config = ConfigDict(
        extra="allow",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of this model, as Rocket.Chat would send it."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def to_json(self) -> bytes:
        """Compact JSON bytes of this model, as ``JSON.stringify`` would write them."""
        return encode_json(self)


def encode_json(document: Any) -> bytes:
    """JSON bytes as Rocket.Chat's ``JSON.stringify`` writes them: compact, UTF-8, dates in its
    form, a lone surrogate as its escape (``"\\ud800"``). Models inside are written as their wire
    documents. Raises ``TypeError`` or ``ValueError`` for what JSON cannot hold (a document
    nested too deeply included)."""
    if isinstance(document, BaseModel):
        return document.__pydantic_serializer__.to_json(document, by_alias=True, exclude_unset=True)
    try:
        text = json.dumps(
            document, separators=(",", ":"), ensure_ascii=False, default=_json_default
        )
    except RecursionError:
        raise TooDeep from None
    try:
        return text.encode()
    except UnicodeEncodeError:
        # UTF-8 cannot hold a surrogate; JSON.stringify writes a lone one as its \u escape. Outside
        # strings the dumped text is ASCII, so every surrogate here sits inside a string.
        return _SURROGATE.sub(_escape, text).encode()


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        try:
            return format_date(value)
        except OverflowError:
            # Outside what UTC can hold: write it as given, so the contract names the field.
            return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")
