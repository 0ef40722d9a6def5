"""Reads for the API and the dashboard."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

import policies
from mabdash.accounts.authentication import KeyPrincipal
from mabdash.accounts.permissions import check_experiment_access
from mabdash.errors import NotFound
from mabdash.experiments.models import Arm, Experiment, ModelVersion, Override, PolicyState, RetentionRun, Reward

#: A reward waiting to be learned: stored in time to count, not yet applied to the policy.
#: The one definition; the partial index ``reward_pending`` has the same condition.
PENDING = Q(learn=True, applied_version__isnull=True)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def experiment_list(principal: Any) -> QuerySet[Experiment]:
    """Experiments the principal may see (an API key sees only its scope)."""
    experiments = Experiment.objects.prefetch_related("arms__model_version").order_by("slug")
    if isinstance(principal, KeyPrincipal) and not principal.all_experiments:
        experiments = experiments.filter(pk__in=principal.experiment_ids)
    return experiments


def experiment_get(slug: str, principal: Any) -> Experiment:
    """One experiment by slug: ``NotFound``, or ``Forbidden`` outside an API key's scope."""
    experiment = Experiment.objects.prefetch_related("arms__model_version").filter(slug=slug).first()
    if experiment is None:
        raise NotFound({"experiment": [f"no experiment {slug!r}"]})
    check_experiment_access(principal, experiment.pk, slug)
    return experiment


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.order_by("name", "-created_at")


def model_version_get(model_id: int) -> ModelVersion:
    model = ModelVersion.objects.filter(pk=model_id).first()
    if model is None:
        raise NotFound({"model_version": [f"no model version with id {model_id}"]})
    return model


# --------------------------------------------------------------------------- pending rewards
def pending_rewards(experiment_id: int | None = None) -> QuerySet[Reward]:
    """Rewards waiting to be learned (of one experiment, or of all)."""
    rewards = Reward.objects.filter(PENDING)
    return rewards if experiment_id is None else rewards.filter(experiment_id=experiment_id)


def pending_reward_count(experiment_id: int) -> int:
    return pending_rewards(experiment_id).count()


def has_pending_rewards(experiment_id: int) -> bool:
    return pending_rewards(experiment_id).exists()


def pending_reward_summary() -> dict[int, tuple[int, datetime]]:
    """Experiment id → (pending rewards, when the oldest arrived), for experiments with any."""
    rows = pending_rewards().values("experiment_id").annotate(n=Count("id"), oldest=Min("received_at"))
    return {row["experiment_id"]: (row["n"], row["oldest"]) for row in rows}


def experiments_waiting_since(cutoff: datetime) -> list[int]:
    """Experiments with a reward pending since ``cutoff`` or longer (beat's sweep)."""
    return list(pending_rewards().filter(received_at__lte=cutoff).values_list("experiment_id", flat=True).distinct())


# --------------------------------------------------------------------------- overrides
def override_active(experiment_id: int, now: datetime | None = None) -> Override | None:
    """The override in force now: not ended and not past its expiry.

    The one meaning of "active": an override past ``expires_at`` stops counting at once,
    even before beat's sweep marks it ended.
    """
    now = now or timezone.now()
    return (
        Override.objects.filter(experiment_id=experiment_id, ended_at__isnull=True).exclude(expires_at__lte=now).first()
    )


def overrides_active(experiment_ids: Sequence[int], now: datetime | None = None) -> dict[int, Override]:
    """:func:`override_active` for many experiments in one query."""
    now = now or timezone.now()
    overrides = Override.objects.filter(experiment_id__in=experiment_ids, ended_at__isnull=True).exclude(
        expires_at__lte=now
    )
    return {override.experiment_id: override for override in overrides}


def effective_allocation(
    policy_allocation: Sequence[float],
    arms: Sequence[Arm],
    override: Override | None = None,
    *,
    status: str = Experiment.Status.RUNNING,
    default_position: int = 0,
) -> tuple[tuple[float, ...], str]:
    """The allocation decide samples from, and how it is served — the one definition.

    A draft, paused or stopped experiment serves its default arm (``default``). Otherwise an
    active pin on an active arm sends it everything (``pin``); manual weights replace the
    policy's split over the active arms (``weights``); otherwise the policy's allocation
    over the active arms (``policy``). Arms that are not active never get traffic.
    """
    if status != Experiment.Status.RUNNING:
        return tuple(1.0 if i == default_position else 0.0 for i in range(len(arms))), "default"
    active = [arm.status == Arm.Status.ACTIVE for arm in arms]
    pinned = override.position if override is not None and override.kind == Override.Kind.PIN else None
    if pinned is not None and pinned < len(arms) and active[pinned]:
        return tuple(1.0 if i == pinned else 0.0 for i in range(len(arms))), "pin"
    if override is not None and override.kind == Override.Kind.WEIGHTS and override.weights:
        weights = [w if ok else 0.0 for w, ok in zip(override.weights, active, strict=False)]
        if sum(weights) > 0:
            weights += [0.0] * (len(arms) - len(weights))
            return tuple(w / sum(weights) for w in weights), "weights"
    weights = [p if ok else 0.0 for p, ok in zip(policy_allocation, active, strict=False)]
    weights += [0.0] * (len(arms) - len(weights))
    total = sum(weights)
    if total <= 0:
        # Every arm with probability was excluded: spread over the active ones.
        weights = [1.0 if ok else 0.0 for ok in active]
        total = sum(weights) or 1.0
    return tuple(w / total for w in weights), "policy"


def experiment_state(experiment: Experiment) -> dict[str, Any]:
    """Per-arm learning state and what decide serves, as plain data."""
    state = PolicyState.objects.get(experiment=experiment)
    policy = policies.policy_from_state(state.state)
    arms = list(Arm.objects.filter(experiment=experiment).select_related("model_version").order_by("position"))
    override = override_active(experiment.pk)
    allocation, served_by = effective_allocation(
        state.allocation, arms, override, status=experiment.status, default_position=experiment.default_position
    )
    belief = policy.belief()
    best = policy.probability_best()
    late = Reward.objects.filter(experiment=experiment, learn=False).count()
    return {
        "experiment": experiment.slug,
        "status": experiment.status,
        "policy": experiment.policy_kind,
        "policy_version": state.version,
        "updated_at": state.updated_at,
        "pending_rewards": pending_reward_count(experiment.pk),
        "applied_rewards": state.applied_count,
        "late_rewards": late,
        "served_by": served_by,
        "override": override.describe() if override else None,
        "uncertainty": belief["kind"],
        # The full belief (posterior parameters or interval) as plain lists, for the charts.
        "belief": {
            k: ([_finite(x) for x in v] if hasattr(v, "__len__") and not isinstance(v, str) else v)
            for k, v in belief.items()
        },
        "arms": [
            {
                "position": arm.position,
                "model": {
                    "id": arm.model_version_id,
                    "name": arm.model_version.name,
                    "version": arm.model_version.version,
                    "artifact_uri": arm.model_version.artifact_uri,
                },
                "status": arm.status,
                "served": arm.served_count,
                "rewards": int(policy.counts_[arm.position]),
                "reward_sum": float(policy.sums_[arm.position]),
                "mean": _finite(belief["mean"][arm.position]),
                "lower": _finite(belief["lower"][arm.position]),
                "upper": _finite(belief["upper"][arm.position]),
                "allocation": allocation[arm.position],
                "policy_allocation": state.allocation[arm.position] if arm.position < len(state.allocation) else 0.0,
                "probability_best": float(best[arm.position]),
            }
            for arm in arms
        ],
    }


def retention_boundary(experiment_id: int) -> datetime | None:
    """The latest retention boundary: decisions and rewards before it were archived and dropped."""
    boundary: datetime | None = (
        RetentionRun.objects.filter(experiment_id=experiment_id)
        .order_by("-boundary")
        .values_list("boundary", flat=True)
        .first()
    )
    return boundary
