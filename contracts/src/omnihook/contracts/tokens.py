"""Where the shared secret comes from: ``OMNIHOOK_TOKEN`` or a token file, never the command line.

Rocket.Chat sends its "Secret Token" in ``X-RocketChat-Livechat-Token``. Both the receiver (which
checks it) and the sender (which sends it) read it the same way, so this lives beside the shared
command line. Several tokens may be given for rotation: the receiver accepts any of them, the
sender sends the first.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEFAULT_TOKEN_FILE", "TOKEN_ENV", "TOKEN_HEADER", "TokenSourceError", "read_tokens"]

TOKEN_HEADER = "X-RocketChat-Livechat-Token"
"""The header that carries the shared secret on every webhook request."""

TOKEN_ENV = "OMNIHOOK_TOKEN"

DEFAULT_TOKEN_FILE = Path("omnihook.token")
"""The token file in the current directory: ``omnihook serve`` generates it when no token is
configured, and the client commands (``send``, ``send-test``, ...) fall back to it."""

logger = logging.getLogger(__name__)


class TokenSourceError(ValueError):
    """A token source that exists but cannot be used (unreadable or empty file)."""


def read_tokens(
    token_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    token_env: str = TOKEN_ENV,
) -> list[str]:
    """The configured tokens: from ``token_file`` if given, else from the ``token_env`` variable.

    The variable (``OMNIHOOK_TOKEN`` by default) is comma-separated; a token file has one token
    per line (blank lines and ``#`` comments ignored). Returns ``[]`` when neither is set. A token
    file that the group or others may read is used, with a warning logged.
    """
    if token_file is not None:
        try:
            with token_file.open(encoding="utf-8") as handle:
                mode = os.fstat(handle.fileno()).st_mode
                text = handle.read()
        except OSError as exc:
            raise TokenSourceError(f"cannot read token file {token_file}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise TokenSourceError(f"token file {token_file} is not UTF-8 text") from exc
        if os.name == "posix" and stat.S_ISREG(mode) and mode & 0o077:
            logger.warning(
                "warning: group/others can access token file %s (mode %03o): run chmod 600 %s",
                token_file,
                stat.S_IMODE(mode),
                token_file,
            )
        tokens = [line.strip() for line in text.splitlines()]
        tokens = [token for token in tokens if token and not token.startswith("#")]
        if not tokens:
            raise TokenSourceError(f"token file {token_file} holds no token")
        return tokens
    env = os.environ if environ is None else environ
    value = env.get(token_env, "")
    return [token.strip() for token in value.split(",") if token.strip()]
