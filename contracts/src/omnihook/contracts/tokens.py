"""Where the shared secret comes from: ``OMNIHOOK_TOKEN`` or a token file, never the command line.

Rocket.Chat sends its "Secret Token" in ``X-RocketChat-Livechat-Token``. Both the receiver (which
checks it) and the sender (which sends it) read it the same way, so this lives beside the shared
command line. Several tokens may be given for rotation: the receiver accepts any of them, the
sender sends the first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["TOKEN_ENV", "TOKEN_HEADER", "TokenSourceError", "read_tokens"]

TOKEN_HEADER = "X-RocketChat-Livechat-Token"
"""The header that carries the shared secret on every webhook request."""

TOKEN_ENV = "OMNIHOOK_TOKEN"


class TokenSourceError(ValueError):
    """A token source that exists but cannot be used (unreadable or empty file)."""


def read_tokens(
    token_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    token_env: str = TOKEN_ENV,
) -> list[str]:
    """The configured tokens: from ``token_file`` if given, else from the ``token_env`` variable.

    The variable (``OMNIHOOK_TOKEN`` by default) is comma-separated; a token file has one token
    per line (blank lines and ``#`` comments ignored). Returns ``[]`` when neither is set.
    """
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenSourceError(f"cannot read token file {token_file}: {exc.strerror}") from exc
        tokens = [line.strip() for line in text.splitlines()]
        tokens = [token for token in tokens if token and not token.startswith("#")]
        if not tokens:
            raise TokenSourceError(f"token file {token_file} holds no token")
        return tokens
    env = os.environ if environ is None else environ
    value = env.get(token_env, "")
    return [token.strip() for token in value.split(",") if token.strip()]
