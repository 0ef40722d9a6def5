"""Signed, self-describing decision ids.

A decision id carries everything a reward needs to be attributed — experiment, arm
position, policy version, the time of the decision, how it was served and its propensity —
so a reward can be recorded and learned from even before the web process has written the
decision row. An HMAC-SHA256 (truncated to 128 bits) keyed from ``SECRET_KEY`` makes it
unforgeable; ids signed with a key in ``SECRET_KEY_FALLBACKS`` stay valid during a key
rotation.

Layout (big-endian, then URL-safe base64 without padding): format (1 byte), experiment id
(4), arm position (4), policy version (8), decision time in ms since the epoch (8), served
by (1), propensity (float32, 4), random nonce (6); then ``.`` and the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from django.conf import settings

_FORMAT = 1
_LAYOUT = struct.Struct(">BIIQQBf6s")
_SIGNATURE_BYTES = 16
SERVED_BY = ("policy", "default", "pin", "weights")
_SERVED_BY_CODE = {name: code for code, name in enumerate(SERVED_BY)}


class InvalidDecisionId(ValueError):
    """The string is not a decision id this deployment issued."""


@dataclass(frozen=True)
class DecisionToken:
    """What a decision id says."""

    experiment_id: int
    position: int
    policy_version: int
    issued_ms: int
    served_by: str
    propensity: float

    @property
    def issued_at(self) -> datetime:
        return datetime.fromtimestamp(self.issued_ms / 1000, tz=UTC)


@cache
def _keys(secret_key: str, fallbacks: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(hashlib.sha256(b"mabdash.decision-id:" + k.encode()).digest() for k in (secret_key, *fallbacks))


def _signing_keys() -> tuple[bytes, ...]:
    return _keys(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(
    *, experiment_id: int, position: int, policy_version: int, issued_ms: int, served_by: str, propensity: float
) -> str:
    """Create a signed decision id."""
    payload = _LAYOUT.pack(
        _FORMAT,
        experiment_id,
        position,
        policy_version,
        issued_ms,
        _SERVED_BY_CODE[served_by],
        propensity,
        random.getrandbits(48).to_bytes(6, "big"),
    )
    signature = hmac.new(_signing_keys()[0], payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return f"{_b64(payload)}.{_b64(signature)}"


def decode(decision_id: str) -> DecisionToken:
    """Verify and unpack a decision id; raise ``InvalidDecisionId`` saying why not."""
    body, dot, signature_text = decision_id.partition(".")
    if not dot or len(decision_id) > 100:
        raise InvalidDecisionId("not a decision id issued by this deployment")
    try:
        payload, signature = _unb64(body), _unb64(signature_text)
    except (binascii.Error, ValueError):
        raise InvalidDecisionId("not a decision id issued by this deployment") from None
    if len(payload) != _LAYOUT.size:
        raise InvalidDecisionId("not a decision id issued by this deployment")
    if not any(
        hmac.compare_digest(hmac.new(key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES], signature)
        for key in _signing_keys()
    ):
        raise InvalidDecisionId("signature does not match (tampered, or issued by another deployment)")
    fmt, experiment_id, position, policy_version, issued_ms, served_code, propensity, _ = _LAYOUT.unpack(payload)
    if fmt != _FORMAT or served_code >= len(SERVED_BY):
        raise InvalidDecisionId("unknown decision id format")
    return DecisionToken(experiment_id, position, policy_version, issued_ms, SERVED_BY[served_code], propensity)
