"""Python's ``json`` for the documents the validating parser refuses, made safe to call on input.

The fast path of :func:`~omnihook.contracts.parse_event` is pydantic-core's own JSON parser
(jiter). When it refuses a document, the contracts decode it again with Python's ``json`` to
explain why, or to accept what JavaScript writes and jiter does not (lone surrogates). Python's
``json`` recurses once per nesting level, so a hostile ``[[[[…]]]]`` would raise
``RecursionError``; here it raises :class:`TooDeep`, a ``ValueError``, instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "TooDeep", "dumps", "loads", "replace_lone_surrogates"]

MAX_DEPTH = 200
"""How deep a document may nest: pydantic-core's JSON parser refuses anything deeper."""

REPLACEMENT_CHARACTER = "\ufffd"

# After json.loads, a valid surrogate pair is one code point: any surrogate left is a lone one.
_SURROGATE = re.compile("[\ud800-\udfff]")
# What a surrogate looks like escaped in JSON text: \ud800 to \udfff, either case.
_ESCAPED = re.compile(r"\\u[dD][89abcdefABCDEF]")
_ESCAPED_BYTES = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class TooDeep(ValueError):
    """A document nested deeper than the contracts accept (or than Python can recurse)."""

    def __init__(self) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels")


def loads(text: str | bytes | bytearray) -> Any:
    """``json.loads`` with every lone surrogate (keys too) replaced by U+FFFD.

    Raises ``ValueError`` for text that is not JSON, and :class:`TooDeep` when it nests too deeply
    for Python to decode.
    """
    try:
        document = json.loads(text)
    except RecursionError:
        raise TooDeep from None
    if not _may_hold_surrogates(text):  # the usual case: no walk through the document
        return document
    return replace_lone_surrogates(document)


def _may_hold_surrogates(text: str | bytes | bytearray) -> bool:
    if isinstance(text, str):
        return _ESCAPED.search(text) is not None or _SURROGATE.search(text) is not None
    return _ESCAPED_BYTES.search(text) is not None


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON of a decoded document (as ``JSON.stringify`` writes it)."""
    try:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    except RecursionError:
        raise TooDeep from None


def replace_lone_surrogates(document: Any) -> Any:
    """Replace every lone surrogate in the strings of a decoded JSON document by U+FFFD.

    Lists and dicts are changed in place (keys keep their order) and returned; a string is
    returned fixed. Iterative, so that nesting depth cannot exhaust the stack.
    """
    if isinstance(document, str):
        return _fixed(document)
    pending = [document] if isinstance(document, dict | list) else []
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    if _SURROGATE.search(item):
                        node[index] = _fixed(item)
                elif isinstance(item, dict | list):
                    pending.append(item)
            continue
        if any(_SURROGATE.search(key) for key in node):
            items = list(node.items())
            node.clear()
            for key, value in items:
                node[_fixed(key)] = value
        for key, value in node.items():
            if isinstance(value, str):
                if _SURROGATE.search(value):
                    node[key] = _fixed(value)
            elif isinstance(value, dict | list):
                pending.append(value)
    return document


def _fixed(text: str) -> str:
    return _SURROGATE.sub(REPLACEMENT_CHARACTER, text)
