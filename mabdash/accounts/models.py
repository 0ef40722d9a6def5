"""API keys for machine clients: hashed at rest, shown once, scoped, revocable."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mabdash.accounts.roles import KEY_ROLES


class ApiKey(models.Model):
    """A credential for a model server or an automation script.

    The key itself (``mab_<prefix>_<secret>``) is shown once at creation; only the public
    prefix and a SHA-256 hash of the whole key are stored. The secret has 192 random bits,
    so a fast hash is safe here and keeps authentication cheap on the decide path.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    role = models.CharField(max_length=10, choices=[(r, r) for r in KEY_ROLES], default="client")
    all_experiments = models.BooleanField(
        default=False, help_text="Valid for every experiment, including ones created later."
    )
    experiments = models.ManyToManyField("experiments.Experiment", blank=True, related_name="api_keys")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="A personal key acts as this user, with the user's roles (for example to approve).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.role})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class LoginThrottle(models.Model):
    """Failed dashboard logins per account name, counted atomically in the database."""

    username = models.CharField(max_length=150, unique=True)
    failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.username}: {self.failures} failures"
