"""API shapes of counterfactual reports (documentation of what the views return)."""

from __future__ import annotations

from rest_framework import serializers

from mabdash.evaluation.inputs import REPORT_REQUEST
from mabdash.schema import spec_serializer

ReportRequestInput = spec_serializer(REPORT_REQUEST)


class ReportOutput(serializers.Serializer):
    id = serializers.IntegerField()
    experiment = serializers.CharField(source="experiment.slug")
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    requested_by = serializers.CharField()
    requested_at = serializers.DateTimeField()
    since = serializers.DateTimeField(allow_null=True, help_text="Decisions from this time on (null: all).")
    until = serializers.DateTimeField(allow_null=True, help_text="Decisions up to this time.")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    ledger_version = serializers.IntegerField(allow_null=True, help_text="The policy version the report covers.")
    progress = serializers.FloatField(help_text="0 … 1 while running.")
    stage = serializers.CharField(help_text="What the worker is doing now.")
    result = serializers.DictField(
        allow_null=True,
        help_text="decisions, rewarded, missing_rewards, actual, fixed (IPS/SNIPS/DR per fixed target), "
        "strategies (a replay estimate per strategy), sentence; see docs/COUNTERFACTUAL.md.",
    )
    error = serializers.CharField()
