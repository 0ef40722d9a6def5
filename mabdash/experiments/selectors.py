"""Reads for the API and the dashboard."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import QuerySet

import policies
from mabdash.accounts.authentication import KeyPrincipal
from mabdash.accounts.permissions import check_experiment_access
from mabdash.errors import NotFound
from mabdash.experiments.models import Arm, Experiment, ModelVersion, PolicyState, Reward
from mabdash.experiments.serving import active_override, effective_allocation


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


def _pending_rewards(experiment_id: int):
    return Reward.objects.filter(experiment_id=experiment_id, learn=True, applied_version__isnull=True)


def pending_reward_count(experiment_id: int) -> int:
    return _pending_rewards(experiment_id).count()


def has_pending_rewards(experiment_id: int) -> bool:
    return _pending_rewards(experiment_id).exists()


def experiment_state(experiment: Experiment) -> dict[str, Any]:
    """Per-arm learning state and what decide serves, as plain data."""
    state = PolicyState.objects.get(experiment=experiment)
    policy = policies.policy_from_state(state.state)
    arms = list(Arm.objects.filter(experiment=experiment).select_related("model_version").order_by("position"))
    override = active_override(experiment.pk)
    allocation, served_by = effective_allocation(state.allocation, arms, override)
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
                "probability_best": float(best[arm.position]),
            }
            for arm in arms
        ],
    }
