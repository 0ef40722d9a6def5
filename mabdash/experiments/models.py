"""The domain: model versions, experiments and their arms, and the two ledgers.

The decision and reward tables are append-only ledgers. ``PolicyState`` is a cache of the
reward ledger (plus ``PolicyChange``, the arm changes), rebuilt exactly by
``manage.py rebuild_policy_state``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q

SLUG_VALIDATOR = RegexValidator(r"^[a-z0-9][a-z0-9-]{0,62}$", "lowercase letters, digits and hyphens, at most 63")


class ModelVersion(models.Model):
    """A trained model artifact that can serve traffic."""

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=50)
    artifact_uri = models.CharField(max_length=500)
    validation_score = models.FloatField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    registered_by = models.CharField(max_length=150, help_text="User name or API key that registered it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="unique_model_name_version")]

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


class Experiment(models.Model):
    """One prediction slot whose traffic a policy splits between model versions."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        PAUSED = "paused"
        STOPPED = "stopped"

    class RewardKind(models.TextChoices):
        BINARY = "binary", "binary (0 or 1)"
        BOUNDED = "bounded", "bounded in [0, 1]"
        REAL = "real", "any real number"

    class ApprovalMode(models.TextChoices):
        DIRECT = "direct"
        FOUR_EYES = "four_eyes"

    class RollbackMode(models.TextChoices):
        AUTO = "auto"
        VETO_WINDOW = "veto_window"
        APPROVAL = "approval"

    slug = models.CharField(max_length=63, unique=True, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    policy_kind = models.CharField(max_length=40)
    policy_params = models.JSONField(default=dict, blank=True)
    policy_seed = models.PositiveIntegerField(default=0)
    reward_kind = models.CharField(max_length=10, choices=RewardKind.choices, default=RewardKind.BINARY)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    default_position = models.PositiveIntegerField(default=0, help_text="Arm served while paused or stopped.")
    reward_window_seconds = models.PositiveIntegerField(
        default=86_400, help_text="Rewards for decisions older than this are stored as late and not learned from."
    )
    guardrails = models.JSONField(default=dict, blank=True)
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Decisions and rewards older than this are archived and dropped; empty: the global default.",
    )
    approval_mode = models.CharField(max_length=10, choices=ApprovalMode.choices, default=ApprovalMode.DIRECT)
    rollback_mode = models.CharField(max_length=12, choices=RollbackMode.choices, default=RollbackMode.AUTO)
    # Bumped by every change that alters what decide serves (learning included); web
    # processes poll it to reload their serving cache.
    serving_version = models.BigIntegerField(default=1)
    # Bumped only by changes people make (status, arms, pins, weights, settings): an
    # operator's action is refused as stale only when this moved since the page was loaded.
    control_version = models.BigIntegerField(default=1)
    # Set when archived: stopped, and left off the overview.
    archived_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


def lock_experiment(experiment_id: int) -> Experiment:
    """Lock an experiment's row for a change of its control or learning state.

    The lock order everywhere is: action request, experiment, arms, policy state — so
    operators, approvers and learners never deadlock. FOR NO KEY UPDATE does not conflict
    with the KEY SHARE lock a reward insert takes for its foreign key, so learning never
    blocks reward ingestion.
    """
    return Experiment.objects.select_for_update(no_key=True).get(pk=experiment_id)


def experiment_versions_bump(experiment_id: int, *, control: bool) -> None:
    """Announce a change of what decide serves; ``control`` also marks it a person's change.

    The one place the two versions move: learning bumps ``serving_version`` only, every
    control change (status, arms, overrides, settings) bumps both.
    """
    changes = {"serving_version": F("serving_version") + 1}
    if control:
        changes["control_version"] = F("control_version") + 1
    Experiment.objects.filter(pk=experiment_id).update(**changes)


class Arm(models.Model):
    """A model version inside an experiment; ``position`` is its index in the policy."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        ROLLED_BACK = "rolled_back"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="arms")
    position = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    # Decisions written to the ledger for this arm (advanced by the decision flusher).
    served_count = models.BigIntegerField(default=0)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "position"], name="unique_arm_position"),
            models.UniqueConstraint(fields=["experiment", "model_version"], name="unique_arm_model"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}#{self.position} {self.model_version_id}"


class Override(models.Model):
    """A pin (one arm gets all traffic) or manual weights, replacing the policy's split.

    At most one is in force per experiment; a new one ends the previous one. ``ended_at``
    is set when it is cleared, replaced or found expired. Serving state, so it lives here
    beside the arms; only ``mabdash.control`` changes it.
    """

    class Kind(models.TextChoices):
        PIN = "pin"
        WEIGHTS = "weights"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="overrides")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    position = models.PositiveIntegerField(null=True, blank=True, help_text="Pinned arm.")
    weights = models.JSONField(null=True, blank=True, help_text="One weight per arm position, normalised to sum to 1.")
    created_by = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(ended_at__isnull=True), name="one_active_override_per_experiment"
            )
        ]

    def __str__(self) -> str:
        target = f"arm {self.position}" if self.kind == self.Kind.PIN else f"weights {self.weights}"
        return f"{self.kind} {target} on {self.experiment_id}"

    def describe(self) -> dict[str, Any]:
        """The override as plain JSON types (audit records, API answers)."""
        return {
            "id": self.pk,
            "kind": self.kind,
            "position": self.position,
            "weights": self.weights,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


class PolicyState(models.Model):
    """The learned state of an experiment's policy: a cache of the ledgers.

    ``version`` counts the ledger steps applied: every reward batch and every
    ``PolicyChange`` is one step. Written only by ``mabdash.experiments.services.learning``.
    """

    experiment = models.OneToOneField(Experiment, on_delete=models.CASCADE, primary_key=True, related_name="policy")
    state = models.JSONField()
    version = models.BigIntegerField(default=0)
    applied_count = models.BigIntegerField(default=0)
    allocation = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"policy state of {self.experiment_id} v{self.version}"


class PolicyCheckpoint(models.Model):
    """The policy state at one ledger version, proven against the ledger when it was taken.

    The rebuild starts from the latest checkpoint and replays the ledger after it, so its
    cost does not grow with the experiment's age, and retention may drop the rewards it
    covers. Written by ``mabdash.experiments.services.checkpoints`` only.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="checkpoints")
    version = models.BigIntegerField()
    state = models.JSONField()
    applied_count = models.BigIntegerField()
    reason = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["experiment", "version"]
        constraints = [models.UniqueConstraint(fields=["experiment", "version"], name="unique_checkpoint_version")]

    def __str__(self) -> str:
        return f"checkpoint of {self.experiment_id} at v{self.version}"


class RetentionRun(models.Model):
    """One committed retention run: what it archived, where, and the checkpoint it relied on.

    Inserted in the same transaction that drops the rows, so an archive directory without a
    run of the same ``run_id`` is from a run that rolled back (its rows are still stored).
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="retention_runs")
    run_id = models.CharField(max_length=40, unique=True)
    boundary = models.DateTimeField(help_text="Rows older than this were archived and dropped.")
    checkpoint_version = models.BigIntegerField()
    decisions = models.BigIntegerField()
    rewards = models.BigIntegerField()
    archive = models.CharField(max_length=500, help_text="Directory of the run's files and manifest.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["experiment", "created_at"]

    def __str__(self) -> str:
        return f"retention {self.run_id} of {self.experiment_id}"


class PolicyChange(models.Model):
    """A non-reward step of the policy ledger (creation, arm added, arm excluded)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="policy_changes")
    version = models.BigIntegerField()
    kind = models.CharField(max_length=20)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["experiment", "version"]
        constraints = [models.UniqueConstraint(fields=["experiment", "version"], name="unique_policy_change_version")]

    def __str__(self) -> str:
        return f"{self.experiment_id} v{self.version} {self.kind}"


class Decision(models.Model):
    """One served decision. Written in batches by each web process's decision buffer."""

    decision_id = models.CharField(max_length=100, primary_key=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    propensity = models.FloatField()
    policy_version = models.BigIntegerField()
    served_by = models.CharField(max_length=10)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["experiment", "created_at"], name="decision_exp_time")]

    def __str__(self) -> str:
        return self.decision_id


class Reward(models.Model):
    """One reward event. The ledger the policy state is rebuilt from.

    ``applied_version`` is the policy-ledger step that learned it (NULL while pending); the
    rebuild replays rewards ordered by (``applied_version``, ``id``), which is exactly the
    order the live learner applied them in. ``learn`` is False for late rewards.
    """

    # Unique per experiment (see Meta): the idempotency key of a client's reward.
    event_id = models.CharField(max_length=128)
    # No single-column indexes on the foreign keys: the composite indexes below start with
    # them, and every index slows the ingestion of large batches.
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="rewards", db_index=False)
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="rewards", db_index=False)
    # NULL (not "") means "not tied to a decision"; the batch insert passes None through.
    decision_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    # A plain reward is one trial; a count reward (binary experiments) summarises ``trials``
    # 0/1 outcomes and ``value`` is its number of successes. Learning expands it into its
    # outcomes (``mabdash.experiments.services.learning.outcomes``).
    value = models.FloatField()
    trials = models.PositiveIntegerField(default=1, db_default=1)
    decided_at = models.DateTimeField(null=True, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    learn = models.BooleanField(default=True)
    applied_version = models.BigIntegerField(null=True, blank=True)

    class Meta:
        # The idempotency key, (experiment, event_id), is enforced by ``RewardKey``: on
        # PostgreSQL this table is partitioned by day of ``received_at`` (migration 0011) and
        # a partitioned table can only enforce a uniqueness that includes the partition key.
        indexes = [
            models.Index(
                fields=["experiment", "id"],
                name="reward_pending",
                condition=Q(learn=True, applied_version__isnull=True),
            ),
            models.Index(fields=["experiment", "applied_version", "id"], name="reward_ledger_order"),
            models.Index(fields=["experiment", "received_at"], name="reward_exp_time"),
            # An arm's most recent learned rewards (the guardrails' floor window).
            models.Index(fields=["arm", "applied_version", "id"], name="reward_arm_recent"),
            models.Index(fields=["decision_id"], name="reward_decision"),
            models.Index(fields=["experiment"], name="reward_late", condition=Q(learn=False)),
        ]

    def __str__(self) -> str:
        return self.event_id


class RewardKey(models.Model):
    """The idempotency key of a stored reward: one row per (experiment, event id).

    Written in the same statement as the reward (``services.rewards``) and deleted with it
    by retention, so an event id is refused as a duplicate for exactly as long as its reward
    is stored — whichever day's partition holds it. ``received_at`` is the reward's own,
    which finds the stored reward of a retried event id in the partition of its day.
    """

    pk = models.CompositePrimaryKey("experiment", "event_id")
    # No index of its own: the primary key starts with it.
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+", db_index=False)
    event_id = models.CharField(max_length=128)
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.event_id


class AllocationSnapshot(models.Model):
    """A point of the allocation time series, for the charts (rate-limited per experiment).

    ``series`` is one compact JSON object with a list per name in ``SERIES``, one entry per
    arm position. It is plain text rather than JSON columns on purpose: the dashboard reads
    hundreds of snapshots per request, and one text column parsed in a single call is several
    times cheaper than seven ``jsonb`` columns decoded field by field.
    """

    #: ``allocation``: the policy's own split; ``effective``: what decide served (after
    #: status, pins, weights and excluded arms — snapshots before it existed lack it).
    SERIES = ("allocation", "effective", "served", "reward_counts", "reward_sums", "means", "lower", "upper")

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="snapshots")
    created_at = models.DateTimeField(db_index=True)
    policy_version = models.BigIntegerField()
    series = models.TextField()

    class Meta:
        ordering = ["experiment", "created_at"]
        indexes = [models.Index(fields=["experiment", "created_at"], name="snapshot_exp_time")]

    def __str__(self) -> str:
        return f"{self.experiment_id} @ {self.created_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def build(
        cls, *, experiment_id: int, created_at: datetime, policy_version: int, **series: list[Any]
    ) -> AllocationSnapshot:
        """A snapshot from one list per name in ``SERIES`` (all required)."""
        if set(series) != set(cls.SERIES):
            raise ValueError(f"series: need exactly {', '.join(cls.SERIES)}")
        return cls(
            experiment_id=experiment_id,
            created_at=created_at,
            policy_version=policy_version,
            series=orjson.dumps({name: series[name] for name in cls.SERIES}).decode(),
        )

    @property
    def values(self) -> dict[str, list]:
        """The series as Python lists."""
        return orjson.loads(self.series)


class AuditEntry(models.Model):
    """An append-only record of an action: who, when, what, state before and after, why."""

    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    actor = models.CharField(max_length=150, help_text="User name, api-key:<name>, or system.")
    kind = models.CharField(max_length=40)
    # One sentence in words, written by whoever records the entry (history cards, console).
    summary = models.TextField(blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.kind}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("audit entries are append-only")
