"""Explicit input and output serializers of the REST API (also its OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mabdash.experiments.inputs import MAX_REWARD_BATCH, MODEL_VERSION, REWARD, SLUG, SLUG_HELP
from mabdash.experiments.models import Experiment
from mabdash.experiments.selectors import override_active
from mabdash.schema import batch_serializer, spec_serializer
from mabdash.strict_fields import IdField, StrictCharField, StrictIntegerField, StrictJsonField

# --------------------------------------------------------------------------- model registry
ModelVersionInput = spec_serializer(MODEL_VERSION)


class ModelVersionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.CharField()
    artifact_uri = serializers.CharField()
    validation_score = serializers.FloatField(allow_null=True)
    metadata = serializers.DictField()
    registered_by = serializers.CharField()
    created_at = serializers.DateTimeField()


class Page(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class ModelVersionPage(Page):
    results = ModelVersionOutput(many=True)


class ModelRefOutput(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    artifact_uri = serializers.CharField()


class ModelRefWithIdOutput(ModelRefOutput):
    id = serializers.IntegerField()


# --------------------------------------------------------------------------- experiments
class PolicyInput(serializers.Serializer):
    kind = StrictCharField(
        help_text="naive, validation, ab_test, epsilon_greedy, ucb1, thompson, discounted_thompson or sw_ucb"
    )
    params = StrictJsonField(required=False, default=dict, max_bytes=16_384)
    seed = StrictIntegerField(required=False, default=0, min_value=0, max_value=2**31 - 1)


class ExperimentInput(serializers.Serializer):
    slug = StrictCharField(
        max_length=63, validators=[RegexValidator(rf"^{SLUG}$", SLUG_HELP)], help_text=f"Unique; {SLUG_HELP}."
    )
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=10_000)
    policy = PolicyInput()
    reward_kind = serializers.ChoiceField(choices=Experiment.RewardKind.values, default="binary")
    arms = serializers.ListField(
        child=IdField(),
        min_length=1,
        max_length=100,
        help_text="Model version ids, in arm order (positions 0, 1, …).",
    )
    default_arm = StrictIntegerField(required=False, default=0, min_value=0, max_value=99)
    reward_window_seconds = StrictIntegerField(required=False, default=86_400, min_value=1, max_value=31_536_000)
    retention_days = StrictIntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=36_500,
        help_text="Raw decisions and rewards older than this are archived and dropped; null: the global default.",
    )
    guardrails = StrictJsonField(required=False, default=dict, max_bytes=16_384)
    approval_mode = serializers.ChoiceField(choices=Experiment.ApprovalMode.values, default="direct")
    rollback_mode = serializers.ChoiceField(choices=Experiment.RollbackMode.values, default="auto")
    status = serializers.ChoiceField(choices=["draft", "running"], default="draft")


class ArmOutput(serializers.Serializer):
    position = serializers.IntegerField()
    status = serializers.CharField()
    served = serializers.IntegerField(source="served_count")
    model = ModelRefWithIdOutput(source="model_version")


class PolicyOutput(serializers.Serializer):
    kind = serializers.CharField(source="policy_kind")
    params = serializers.DictField(source="policy_params")
    seed = serializers.IntegerField(source="policy_seed")


OverrideSchema = {
    "type": "object",
    "nullable": True,
    "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string", "enum": ["pin", "weights"]},
        "position": {"type": "integer", "nullable": True},
        "weights": {"type": "array", "items": {"type": "number"}, "nullable": True},
        "expires_at": {"type": "string", "format": "date-time", "nullable": True},
    },
}


class ExperimentOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.CharField()
    policy = PolicyOutput(source="*")
    reward_kind = serializers.CharField()
    default_arm = serializers.IntegerField(source="default_position")
    reward_window_seconds = serializers.IntegerField()
    retention_days = serializers.IntegerField(allow_null=True)
    guardrails = serializers.DictField()
    approval_mode = serializers.CharField()
    rollback_mode = serializers.CharField()
    arms = ArmOutput(many=True)
    serving_version = serializers.IntegerField(
        help_text="Changes with anything that alters what decide serves, learning included."
    )
    control_version = serializers.IntegerField(
        help_text="Changes only when a person or a guardrail changes the experiment (status, arms, pins, "
        "weights, settings); send it back as expected_version with an action."
    )
    override = serializers.SerializerMethodField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(OverrideSchema)
    def get_override(self, experiment: Experiment) -> dict[str, Any] | None:
        # A list passes every row's override in the context (one query for the page).
        overrides = self.context.get("overrides")
        override = overrides.get(experiment.pk) if overrides is not None else override_active(experiment.pk)
        return override.describe() if override else None


class ExperimentPage(Page):
    results = ExperimentOutput(many=True)


# --------------------------------------------------------------------------- decide & state
class DecisionOutput(serializers.Serializer):
    decision_id = serializers.CharField(help_text="Signed id; send it back with the reward.")
    arm = serializers.IntegerField(help_text="Arm position.")
    model = ModelRefOutput()
    propensity = serializers.FloatField(help_text="Probability with which this arm was served.")
    policy_version = serializers.IntegerField()
    serving_version = serializers.IntegerField(
        help_text="Of the allocation this was drawn from; grows with every change. A client that has seen it "
        "sends it as `min_serving_version` so that no later answer comes from an older allocation."
    )
    served_by = serializers.ChoiceField(choices=["policy", "default", "pin", "weights"])
    experiment_status = serializers.CharField()
    note = serializers.CharField(allow_null=True)


class SnapshotArmOutput(serializers.Serializer):
    position = serializers.IntegerField()
    model = ModelRefOutput()
    status = serializers.CharField()
    share = serializers.FloatField(help_text="Probability with which decide serves this arm now.")


class DrawnDecisionOutput(serializers.Serializer):
    decision_id = serializers.CharField(help_text="Signed; report it once served, send it back with the reward.")
    arm = serializers.IntegerField(help_text="Arm position.")


class SnapshotOutput(serializers.Serializer):
    experiment = serializers.CharField()
    experiment_status = serializers.CharField()
    policy_version = serializers.IntegerField()
    serving_version = serializers.IntegerField(
        help_text="Grows with every change of what decide samples from. Send it back as `min_serving_version` "
        "(to this endpoint and to decide) so that no web process answers with an older allocation."
    )
    served_by = serializers.ChoiceField(choices=["policy", "default", "pin", "weights"])
    default_arm = serializers.IntegerField()
    arms = SnapshotArmOutput(many=True)
    decisions = DrawnDecisionOutput(many=True, help_text="Drawn from this snapshot, in order; serve each once.")
    refresh_seconds = serializers.FloatField(help_text="Ask again (with If-None-Match) this often.")
    etag = serializers.CharField(help_text="The ETag header: changes whenever what decide samples from changes.")


class DecisionReportInput(serializers.Serializer):
    # Items are not typed here: each one gets its own outcome, a bad one is rejected alone.
    decisions = serializers.ListField(
        child=serializers.JSONField(),
        min_length=1,
        max_length=10_000,
        help_text="Served decision ids (strings of at most 100 characters; anything else is rejected per item).",
    )


class DecisionReportItemOutput(serializers.Serializer):
    index = serializers.IntegerField()
    decision_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class DecisionReportOutput(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = DecisionReportItemOutput(many=True)


class ArmStateOutput(serializers.Serializer):
    position = serializers.IntegerField()
    model = ModelRefWithIdOutput()
    status = serializers.CharField()
    served = serializers.IntegerField()
    rewards = serializers.IntegerField()
    reward_sum = serializers.FloatField()
    mean = serializers.FloatField(allow_null=True)
    lower = serializers.FloatField(allow_null=True)
    upper = serializers.FloatField(allow_null=True)
    allocation = serializers.FloatField(help_text="Share of traffic decide serves this arm now (after overrides).")
    policy_allocation = serializers.FloatField(help_text="The policy's own share for this arm, before overrides.")
    probability_best = serializers.FloatField()


class StateOutput(serializers.Serializer):
    experiment = serializers.CharField()
    status = serializers.CharField()
    policy = serializers.CharField()
    policy_version = serializers.IntegerField()
    updated_at = serializers.DateTimeField()
    pending_rewards = serializers.IntegerField()
    applied_rewards = serializers.IntegerField()
    late_rewards = serializers.IntegerField()
    served_by = serializers.CharField()
    uncertainty = serializers.CharField(help_text="interval, beta or student_t")
    arms = ArmStateOutput(many=True)


# --------------------------------------------------------------------------- rewards
RewardInput = spec_serializer(REWARD)
RewardBatchInput = batch_serializer("RewardBatchInput", "rewards", RewardInput, MAX_REWARD_BATCH)


class RewardOutcomeOutput(serializers.Serializer):
    index = serializers.IntegerField()
    event_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "conflict", "rejected"])
    # A field named like Serializer.errors: DRF collects it as a field all the same.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class RewardBatchOutput(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    conflict = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = RewardOutcomeOutput(many=True)


class ErrorOutput(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]
