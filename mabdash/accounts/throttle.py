"""Per-account limit on failed logins: 5 failures within 15 minutes lock the account name
for 15 minutes. Counted with an atomic ``UPDATE … SET failures = failures + 1``, so
concurrent guesses from many clients are all counted."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from mabdash.accounts.models import LoginThrottle

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)


def locked_for(username: str, now: datetime | None = None) -> timedelta | None:
    """How long ``username`` stays locked, or None."""
    now = now or timezone.now()
    locked_until = LoginThrottle.objects.filter(username=username).values_list("locked_until", flat=True).first()
    return locked_until - now if locked_until and locked_until > now else None


def record_failure(username: str) -> int:
    """Count one failed login; lock the name on the ``MAX_FAILURES``-th within the window."""
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                LoginThrottle.objects.create(username=username, failures=0, first_failure_at=now)
        except IntegrityError:
            pass  # a row exists (maybe created concurrently)
        # A window that ended starts over: reset first (only one of concurrent resets matches).
        LoginThrottle.objects.filter(
            username=username, first_failure_at__lt=now - WINDOW, locked_until__isnull=True
        ).update(failures=0, first_failure_at=now)
        LoginThrottle.objects.filter(username=username).update(failures=F("failures") + 1)
        throttle = LoginThrottle.objects.get(username=username)
        if throttle.failures >= MAX_FAILURES and not (throttle.locked_until and throttle.locked_until > now):
            LoginThrottle.objects.filter(pk=throttle.pk).update(locked_until=now + LOCKOUT)
        return throttle.failures


def record_success(username: str) -> None:
    LoginThrottle.objects.filter(username=username).delete()


def expire(username: str, now: datetime | None = None) -> None:
    """Forget a lock (and its count) that has run out."""
    now = now or timezone.now()
    LoginThrottle.objects.filter(username=username, locked_until__lte=now).delete()
