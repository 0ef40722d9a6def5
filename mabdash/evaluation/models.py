"""Counterfactual reports: one row per computation, with its progress and result."""

from __future__ import annotations

from django.db import models

from mabdash.experiments.models import Experiment


class CounterfactualReport(models.Model):
    """What every alternative strategy would have earned on an experiment's logged traffic.

    Computed by the ``evaluation`` worker from the decision and reward ledgers (all of them,
    or from ``since``) up to ``until``; ``ledger_version`` is the policy version at that time.
    ``result`` is :func:`policies.counterfactual.counterfactual_report`'s output.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.CharField(max_length=150)
    requested_at = models.DateTimeField()
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ledger_version = models.BigIntegerField(null=True, blank=True)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=200, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["experiment", "-requested_at"], name="report_exp_recent")]

    def __str__(self) -> str:
        return f"counterfactual report {self.pk} of {self.experiment_id} ({self.status})"
