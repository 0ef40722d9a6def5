"""Human-in-the-loop control: requests that need a second person, guardrail (rollback
detector) state and outgoing webhooks. Overrides are serving state and live in
``mabdash.experiments.models``; only this app changes them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mabdash.experiments.models import Experiment


class ActionRequest(models.Model):
    """An action waiting for a decision: a manual action under four-eyes approval, or an
    automatic rollback proposed under a veto window or waiting for approval."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"  # approved (or veto window passed) and carried out
        REJECTED = "rejected"  # rejected or vetoed by an approver
        EXPIRED = "expired"
        FAILED = "failed"  # approved, but the action was no longer possible
        WITHDRAWN = "withdrawn"  # taken back by whoever asked

    class Mode(models.TextChoices):
        FOUR_EYES = "four_eyes"
        VETO_WINDOW = "veto_window"
        APPROVAL = "approval"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="action_requests")
    action = models.CharField(max_length=20)
    params = models.JSONField(default=dict)
    mode = models.CharField(max_length=12, choices=Mode.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.CharField(max_length=150)
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Pending requests lapse at this time.")
    apply_at = models.DateTimeField(null=True, blank=True, help_text="Veto window: applied at this time unless vetoed.")
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "experiment"], name="request_status")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} on {self.experiment_id} ({self.status})"


class GuardrailState(models.Model):
    """Per-arm running state of the rollback rules, kept by the learner (see
    ``mabdash.control.services.monitors`` for its shape)."""

    experiment = models.OneToOneField(Experiment, on_delete=models.CASCADE, primary_key=True, related_name="+")
    arms = models.JSONField(default=dict, help_text="Arm position → each rule's running state.")

    def __str__(self) -> str:
        return f"guardrail state of {self.experiment_id}"


class Webhook(models.Model):
    """An outgoing webhook: JSON events signed with HMAC-SHA256 of ``secret``."""

    EVENTS = (
        "rollback.proposed",
        "rollback.applied",
        "approval.requested",
        "approval.decided",
        "override.expired",
        "guardrail.alert",
    )

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128)
    events = models.JSONField(default=list, help_text="Event names to send; empty means all.")
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.url} ({self.experiment_id})"

    def wants(self, event: str) -> bool:
        return self.active and (not self.events or event in self.events)


class WebhookDelivery(models.Model):
    """One event sent (or being sent) to one webhook, with the log of attempts."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook_id} ({self.status})"
