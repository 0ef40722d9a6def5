"""Input and output serializers of the control API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mabdash.control.models import Webhook
from mabdash.control.services.action_params import ACTIONS, MAX_OVERRIDE_MINUTES, MAX_REASON
from mabdash.experiments.inputs import MAX_ARMS
from mabdash.experiments.models import Experiment
from mabdash.experiments.serializers import PolicyInput
from mabdash.experiments.services.experiments import RETENTION_HELP
from mabdash.strict_fields import IdField, StrictCharField, StrictFloatField, StrictIntegerField, StrictJsonField

REASON_HELP = "Why, for the audit trail (at most 1,000 characters)."
VERSION_HELP = (
    "The experiment's control_version you acted on: the action is refused (409) only if another control "
    "change (status, arms, pin, weights, settings) happened since. Learning never changes it."
)


def ReasonField() -> StrictCharField:
    return StrictCharField(required=False, allow_blank=True, default="", max_length=MAX_REASON, help_text=REASON_HELP)


def ExpectedVersionField() -> StrictIntegerField:
    return StrictIntegerField(min_value=0, max_value=2**63 - 1, required=False, help_text=VERSION_HELP)


@extend_schema_field({"type": "array", "items": {"type": "number", "minimum": 0}, "maxItems": MAX_ARMS})
class WeightsField(serializers.ListField):
    """One weight per arm; the numbers are checked by the service (one rule for API and forms)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.JSONField(), max_length=MAX_ARMS, **kwargs)


class SettingsInput(serializers.Serializer):
    name = StrictCharField(required=False, max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000)
    policy = PolicyInput(required=False)
    reward_window_seconds = StrictIntegerField(required=False, min_value=1, max_value=31_536_000)
    retention_days = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=36_500, help_text=RETENTION_HELP
    )
    default_arm = StrictIntegerField(required=False, min_value=0, max_value=MAX_ARMS - 1)
    guardrails = StrictJsonField(required=False, max_bytes=16_384)
    approval_mode = serializers.ChoiceField(required=False, choices=Experiment.ApprovalMode.values)
    rollback_mode = serializers.ChoiceField(required=False, choices=Experiment.RollbackMode.values)


class ActionInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=ACTIONS)
    arm = StrictIntegerField(
        required=False, min_value=0, max_value=MAX_ARMS - 1, help_text="Arm position (pin, pause_arm, …)."
    )
    weights = WeightsField(required=False, help_text="Action weights: one finite weight ≥ 0 per arm, normalised.")
    expires_in_minutes = StrictFloatField(
        required=False, min_value=0, max_value=MAX_OVERRIDE_MINUTES, help_text="Pin or weights expiry."
    )
    model_version = IdField(required=False, help_text="Action add_arm: the model version to add.")
    settings = SettingsInput(required=False, help_text="Action settings: the settings to change.")
    reason = ReasonField()
    expected_version = ExpectedVersionField()


class StatusInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["running", "paused", "stopped"])
    reason = ReasonField()
    expected_version = ExpectedVersionField()


class ArmInput(serializers.Serializer):
    model_version = IdField()
    reason = ReasonField()
    expected_version = ExpectedVersionField()


class SettingsChangeInput(SettingsInput):
    reason = ReasonField()
    expected_version = ExpectedVersionField()


class RequestOutput(serializers.Serializer):
    id = serializers.IntegerField()
    experiment = serializers.CharField(source="experiment.slug")
    action = serializers.CharField()
    params = serializers.DictField()
    mode = serializers.CharField()
    status = serializers.CharField()
    requested_by = serializers.CharField()
    reason = serializers.CharField()
    evidence = serializers.DictField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    apply_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    outcome = serializers.CharField()


class ActionOutput(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["applied", "requested"])
    action = serializers.CharField()
    summary = serializers.CharField(help_text="What the action does, in one sentence.")
    state = serializers.DictField(source="after", help_text="Status, default arm, arm statuses and override after it.")
    request = RequestOutput(allow_null=True)


class DecisionInput(serializers.Serializer):
    reason = ReasonField()


class WebhookInput(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(child=serializers.ChoiceField(choices=Webhook.EVENTS), required=False, default=list)
    secret = StrictCharField(
        required=False, min_length=16, max_length=128, help_text="HMAC key; generated (and returned once) when absent."
    )


class WebhookOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()


class WebhookCreatedOutput(WebhookOutput):
    secret = serializers.CharField(help_text="Shown once.")


class DeliveryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.CharField()
    payload = serializers.DictField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
