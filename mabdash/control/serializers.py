"""Input and output serializers of the control API."""

from __future__ import annotations

from rest_framework import serializers

from mabdash.control.models import Webhook
from mabdash.control.services.actions import ACTIONS
from mabdash.strict_fields import StrictCharField, StrictFloatField, StrictIntegerField


class ActionInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=ACTIONS)
    arm = StrictIntegerField(required=False, min_value=0, max_value=99, help_text="Arm position (pin, pause_arm, …).")
    weights = serializers.ListField(
        child=StrictFloatField(min_value=0),
        required=False,
        help_text="One weight per arm position (action weights).",
    )
    expires_in_minutes = StrictFloatField(required=False, min_value=0, help_text="Pin or weights expiry.")
    reason = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)
    expected_version = StrictIntegerField(
        min_value=0,
        max_value=2**63 - 1,
        required=False,
        help_text="The experiment's serving_version you acted on; 409 if it changed since.",
    )


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
    state = serializers.DictField(source="after", help_text="Status, default arm, arm statuses and override after it.")
    request = RequestOutput(allow_null=True)


class DecisionInput(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)


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
