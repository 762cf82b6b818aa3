"""Checking ``X-RocketChat-Livechat-Token``: constant time, several tokens at once, nothing leaked."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from enum import Enum

from omnihook.contracts.tokens import TOKEN_HEADER

__all__ = ["TOKEN_HEADER", "TokenCheck", "TokenVerifier"]


class TokenCheck(Enum):
    """The outcome of checking a request's token."""

    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"


class TokenVerifier:
    """Accepts a request whose token equals any configured token (several allow rotation).

    Every configured token is compared, in constant time, whatever the first comparisons gave,
    so response timing does not tell an attacker how much of a guess was right or which token
    matched. ``TokenVerifier.insecure()`` accepts every request; use it only on a trusted network.
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        encoded = [token.encode("utf-8") for token in tokens]
        if not encoded:
            raise ValueError(
                "at least one token is needed; pass tokens=[...] (the Secret Token set in "
                "Rocket.Chat's Omnichannel > Webhooks) or use TokenVerifier.insecure()"
            )
        if any(not token for token in encoded):
            raise ValueError("a token must not be empty (Rocket.Chat sends no header then)")
        self._tokens = tuple(encoded)

    @classmethod
    def insecure(cls) -> TokenVerifier:
        """A verifier that accepts every request, with or without a token."""
        verifier = cls.__new__(cls)
        verifier._tokens = ()
        return verifier

    @property
    def is_insecure(self) -> bool:
        """Whether this verifier accepts everything."""
        return not self._tokens

    def check(self, presented: str | None) -> TokenCheck:
        """Check the header value a request presented (``None`` when the header is absent)."""
        if not self._tokens:
            return TokenCheck.VALID
        if presented is None or presented == "":
            return TokenCheck.MISSING
        candidate = presented.encode("utf-8", "surrogateescape")
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(candidate, token)
        return TokenCheck.VALID if matched else TokenCheck.INVALID
