"""A Griffe extension for the API reference: omnihook's docstrings are written for ``help()``
and doctest (reST roles, ``::`` literal blocks, ``>>>`` examples); this turns them into the
Markdown that mkdocstrings renders, without touching the sources.

- ``>>>`` examples (with their ``...`` lines and expected output) become ``pycon`` code blocks;
- a paragraph ending in ``::`` followed by an indented block becomes a code block (``python``
  when it compiles, else ``text``);
- ``:class:`~pkg.Name``` and the other roles become plain code, ``Name``.

Loaded by ``mkdocs.yml`` (``extensions: [docs/hooks/docstrings.py]``); not part of any package.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`~?([^`]+)`")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _role(match: re.Match[str]) -> str:
    target = match.group(1)
    if match.group(0).count("~"):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _compiles(source: str) -> bool:
    try:
        compile(source, "<docstring>", "exec")
    except SyntaxError:
        return False
    return True


def convert(text: str) -> str:
    """The Markdown form of one docstring (idempotent: fenced blocks are left alone)."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            in_fence = not in_fence
            out.append(line)
            i += 1
            continue
        if in_fence:
            out.append(line)
            i += 1
            continue
        stripped = line.lstrip(" ")
        if stripped.startswith(">>>"):
            pad = " " * _indent(line)
            block: list[str] = []
            while i < len(lines) and lines[i].strip():
                block.append(re.sub(r"\s*# doctest:.*$", "", lines[i][len(pad) :]))
                i += 1
            out += [f"{pad}```pycon", *(pad + b for b in block), f"{pad}```"]
            continue
        if stripped.endswith("::") and not stripped.startswith(":"):
            base = _indent(line)
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and _indent(lines[j]) > base:
                end = j
                while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
                    end += 1
                while end > j and not lines[end - 1].strip():
                    end -= 1
                head = _ROLE.sub(_role, line[:-2].rstrip())
                if head.strip():
                    out += [head + ":", ""]
                pad = " " * base
                body = textwrap.dedent("\n".join(lines[j:end])).splitlines()
                lang = "python" if _compiles("\n".join(body)) else "text"
                out += [f"{pad}```{lang}", *(pad + b if b else "" for b in body), f"{pad}```"]
                i = end
                continue
        out.append(_ROLE.sub(_role, line))
        i += 1
    return "\n".join(out)


class MarkdownDocstrings(griffe.Extension):
    """Convert every docstring of a loaded package once its tree is complete."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()

        def walk(obj: griffe.Object) -> None:
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value)
            for member in obj.members.values():
                if not member.is_alias:
                    walk(member)  # type: ignore[arg-type]

        walk(pkg)
