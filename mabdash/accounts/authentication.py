"""API-key authentication for DRF, cheap enough for the decide hot path.

A verified key is remembered by the web process for ``MABDASH["API_KEY_CACHE_SECONDS"]``
(5 s by default), so a busy client costs one SHA-256 and a dict lookup per request; a
revoked key is refused by every process within that time.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from mabdash.accounts.models import ApiKey
from mabdash.accounts.services import KEY_PREFIX, hash_key


@dataclass(frozen=True)
class KeyPrincipal:
    """The authenticated API key, standing in for ``request.user``."""

    key_id: int
    name: str
    role: str
    all_experiments: bool
    experiment_ids: frozenset[int]
    user_id: int | None = None

    is_authenticated = True
    is_active = True
    is_superuser = False
    is_staff = False
    is_anonymous = False

    @property
    def username(self) -> str:
        return f"api-key:{self.name}"

    def allows_experiment(self, experiment_id: int) -> bool:
        return self.all_experiments or experiment_id in self.experiment_ids


_cache: dict[str, tuple[float, KeyPrincipal]] = {}
_cache_lock = threading.Lock()


def principal_for_key(raw_key: str) -> KeyPrincipal | None:
    """The principal of a valid, unrevoked key, or None."""
    digest = hash_key(raw_key)
    now = time.monotonic()
    cached = _cache.get(digest)
    if cached and cached[0] > now:
        return cached[1]
    parts = raw_key.split("_", 2)  # the secret itself may contain "_"
    if not raw_key.startswith(KEY_PREFIX) or len(parts) != 3:
        return None
    try:
        api_key = ApiKey.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    except DatabaseError:
        # Database down: a key verified before keeps working, so decide can keep serving
        # from its cached allocation; an unknown key cannot be checked (the caller answers 503).
        if cached:
            return cached[1]
        raise
    if api_key is None or not hmac.compare_digest(api_key.key_hash, digest):
        return None
    principal = KeyPrincipal(
        key_id=api_key.pk,
        name=api_key.name,
        role=api_key.role,
        all_experiments=api_key.all_experiments,
        experiment_ids=frozenset(api_key.experiments.values_list("pk", flat=True)),
        user_id=api_key.user_id,
    )
    with _cache_lock:
        _cache[digest] = (now + settings.MABDASH["API_KEY_CACHE_SECONDS"], principal)
    return principal


def forget_cached_keys() -> None:
    """Drop every remembered key (tests; a revocation that must act at once)."""
    with _cache_lock:
        _cache.clear()


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Api-Key <key>`` (``Bearer <key>`` is accepted too)."""

    def authenticate(self, request: Any) -> tuple[Any, KeyPrincipal] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() not in ("api-key", "bearer"):
            return None
        raw_key = raw_key.strip()
        if not raw_key:
            raise exceptions.AuthenticationFailed("Authorization header has no key after the scheme.")
        principal = principal_for_key(raw_key)
        if principal is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        if principal.user_id is not None:
            # A personal key acts as its user: roles and identity are the user's.
            user = User.objects.filter(pk=principal.user_id, is_active=True).first()
            if user is None:
                raise exceptions.AuthenticationFailed("The user of this API key is inactive.")
            return user, principal
        return principal, principal

    def authenticate_header(self, request: Any) -> str:
        # Makes DRF answer 401 (with this challenge) rather than 403 when credentials are missing.
        return 'Api-Key realm="mabdash"'
