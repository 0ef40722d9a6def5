"""Writes for accounts: users with a role, API keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from mabdash.accounts.models import ApiKey
from mabdash.accounts.roles import KEY_ROLES, USER_ROLES
from mabdash.errors import InvalidInput

KEY_PREFIX = "mab_"


def hash_key(raw_key: str) -> str:
    """SHA-256 of the full key (192-bit random secrets need no slow hash)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its one-time secret."""

    api_key: ApiKey
    raw_key: str


@transaction.atomic
def api_key_create(
    *,
    name: str,
    role: str = "client",
    experiments: Iterable = (),
    all_experiments: bool = False,
    created_by: User | None = None,
    user: User | None = None,
) -> CreatedKey:
    """Create a key; the returned ``raw_key`` is the only time the secret exists in clear.

    A personal key (``user`` given) acts as that user with the user's roles, on every
    experiment; ``role`` and the experiment scope do not apply to it.
    """
    if not name or len(name) > 100:
        raise InvalidInput({"name": ["required, at most 100 characters"]})
    if role not in KEY_ROLES:
        raise InvalidInput({"role": [f"must be one of {', '.join(KEY_ROLES)}"]})
    experiments = list(experiments)
    if user is not None:
        experiments, all_experiments = [], True
    if not experiments and not all_experiments:
        raise InvalidInput({"experiments": ["give at least one experiment, or all_experiments"]})
    prefix = secrets.token_hex(6)
    raw_key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    api_key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        key_hash=hash_key(raw_key),
        role=role,
        all_experiments=all_experiments,
        created_by=created_by,
        user=user,
    )
    api_key.experiments.set(experiments)
    return CreatedKey(api_key=api_key, raw_key=raw_key)


def api_key_revoke(api_key: ApiKey) -> None:
    """Revoke a key (idempotent). Web processes stop accepting it within the key cache time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


@transaction.atomic
def user_create(*, username: str, password: str, role: str, email: str = "") -> User:
    """Create a dashboard user holding ``role`` (or ``admin`` for a superuser).

    The password must pass Django's password validators; the refusal lists every reason.
    """
    if role not in (*USER_ROLES, "admin"):
        raise InvalidInput({"role": [f"must be one of {', '.join((*USER_ROLES, 'admin'))}"]})
    if User.objects.filter(username=username).exists():
        raise InvalidInput({"username": [f"user {username!r} already exists"]})
    try:  # Django's validators (AUTH_PASSWORD_VALIDATORS): length, common, numeric, like the name
        validate_password(password, User(username=username, email=email))
    except ValidationError as error:
        raise InvalidInput({"password": list(error.messages)}) from None
    if role == "admin":
        return User.objects.create_superuser(username=username, password=password, email=email)
    user = User.objects.create_user(username=username, password=password, email=email)
    user.groups.add(Group.objects.get(name=role))
    return user
