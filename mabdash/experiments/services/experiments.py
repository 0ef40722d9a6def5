"""Writes for experiments: creation, status, arms.

Changes people make go through ``mabdash.control`` (submit → approve → apply → audit),
which calls these to carry them out; nothing else should.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

import policies
from mabdash.errors import Conflict, InvalidInput
from mabdash.experiments.models import (
    SLUG_VALIDATOR,
    Arm,
    Experiment,
    ModelVersion,
    experiment_versions_bump,
    lock_experiment,
)
from mabdash.experiments.services import learning
from mabdash.experiments.services.audit import audit_record
from policies.guardrails import validate_guardrails

STATUS_TRANSITIONS = {
    Experiment.Status.DRAFT: {Experiment.Status.RUNNING, Experiment.Status.STOPPED},
    Experiment.Status.RUNNING: {Experiment.Status.PAUSED, Experiment.Status.STOPPED},
    Experiment.Status.PAUSED: {Experiment.Status.RUNNING, Experiment.Status.STOPPED},
    Experiment.Status.STOPPED: set(),
}


# --------------------------------------------------------------------------- experiments
def _policy_params(
    kind: str, params: dict[str, Any], reward_kind: str, models: list[ModelVersion], default_position: int
) -> dict[str, Any]:
    """Fill in what the experiment already knows (scores, default arm, reward model)."""
    params = dict(params)
    if kind == "validation":
        if "scores" in params:
            raise InvalidInput({"policy_params": ["scores: taken from the model versions' validation scores"]})
        missing = [str(m) for m in models if m.validation_score is None]
        if missing:
            raise InvalidInput({"arms": [f"the validation policy needs a validation score for {', '.join(missing)}"]})
        params["scores"] = [m.validation_score for m in models]
    if kind == "naive":
        params.setdefault("arm", default_position)
    needs_gaussian = kind in ("thompson", "discounted_thompson") and reward_kind == Experiment.RewardKind.REAL
    if needs_gaussian and params.setdefault("model", "gaussian") != "gaussian":
        raise InvalidInput({"policy_params": ["model: real rewards need the gaussian model"]})
    return params


def _check_policy(kind: str, n_arms: int, params: dict[str, Any], seed: int) -> None:
    if kind not in policies.POLICIES:
        raise InvalidInput(
            {"policy_kind": [f"unknown policy {kind!r}; expected one of {', '.join(policies.POLICIES)}"]}
        )
    try:
        policies.make_policy(kind, n_arms, params, seed=seed)
    except (ValueError, TypeError) as error:
        raise InvalidInput({"policy_params": [str(error)]}) from None


@transaction.atomic
def experiment_create(
    *,
    slug: str,
    name: str,
    policy_kind: str,
    model_version_ids: list[int],
    actor: str,
    description: str = "",
    policy_params: dict[str, Any] | None = None,
    policy_seed: int = 0,
    reward_kind: str = Experiment.RewardKind.BINARY,
    default_arm: int = 0,
    reward_window_seconds: int = 86_400,
    guardrails: dict[str, Any] | None = None,
    approval_mode: str = Experiment.ApprovalMode.DIRECT,
    rollback_mode: str = Experiment.RollbackMode.AUTO,
    status: str = Experiment.Status.DRAFT,
) -> Experiment:
    """Create an experiment with its arms and version 0 of its policy."""
    errors: dict[str, list[str]] = {}
    try:
        SLUG_VALIDATOR(slug)
    except Exception:
        errors["slug"] = [str(SLUG_VALIDATOR.message)]
    if not name or len(name) > 200:
        errors["name"] = ["1-200 characters"]
    if reward_kind not in Experiment.RewardKind.values:
        errors["reward_kind"] = [f"must be one of {', '.join(Experiment.RewardKind.values)}"]
    if status not in (Experiment.Status.DRAFT, Experiment.Status.RUNNING):
        errors["status"] = ["a new experiment starts as draft or running"]
    if not model_version_ids:
        errors["arms"] = ["give at least one model version id"]
    elif len(set(model_version_ids)) != len(model_version_ids):
        errors["arms"] = ["each model version can be an arm only once"]
    if not 0 <= default_arm < max(len(model_version_ids), 1):
        errors["default_arm"] = [f"must be an arm position in [0, {len(model_version_ids)})"]
    try:
        validate_guardrails(guardrails or {})
    except ValueError as error:
        errors["guardrails"] = [str(error)]
    if errors:
        raise InvalidInput(errors)
    found = ModelVersion.objects.in_bulk(model_version_ids)
    missing = [str(i) for i in model_version_ids if i not in found]
    if missing:
        raise InvalidInput({"arms": [f"no model version with id {', '.join(missing)}"]})
    models = [found[i] for i in model_version_ids]
    params = _policy_params(policy_kind, policy_params or {}, reward_kind, models, default_arm)
    _check_policy(policy_kind, len(models), params, policy_seed)
    if Experiment.objects.filter(slug=slug).exists():
        raise Conflict({"slug": [f"experiment {slug!r} already exists"]})
    experiment = Experiment.objects.create(
        slug=slug,
        name=name,
        description=description,
        policy_kind=policy_kind,
        policy_params=params,
        policy_seed=policy_seed,
        reward_kind=reward_kind,
        status=status,
        default_position=default_arm,
        reward_window_seconds=reward_window_seconds,
        guardrails=guardrails or {},
        approval_mode=approval_mode,
        rollback_mode=rollback_mode,
        created_by=actor,
    )
    Arm.objects.bulk_create(
        [Arm(experiment=experiment, model_version=model, position=i) for i, model in enumerate(models)]
    )
    learning.policy_initialize(experiment, len(models), params)
    audit_record(
        "experiment.created",
        actor,
        experiment=experiment,
        after={"policy": policy_kind, "params": params, "arms": [str(m) for m in models], "status": status},
    )
    return experiment


@transaction.atomic
def experiment_set_status(experiment: Experiment, status: str, *, actor: str, reason: str = "") -> Experiment:
    """Move an experiment to ``status`` along the allowed transitions."""
    locked = lock_experiment(experiment.pk)
    if status not in Experiment.Status.values:
        raise InvalidInput({"status": [f"must be one of {', '.join(Experiment.Status.values)}"]})
    if status == locked.status:
        return locked
    allowed = STATUS_TRANSITIONS[Experiment.Status(locked.status)]
    if status not in allowed:
        raise Conflict({"status": [f"cannot go from {locked.status} to {status}"]})
    before = locked.status
    Experiment.objects.filter(pk=locked.pk).update(status=status)
    experiment_versions_bump(locked.pk, control=True)
    locked.refresh_from_db()
    audit_record(
        "experiment.status",
        actor,
        experiment=locked,
        before={"status": before},
        after={"status": status},
        reason=reason,
    )
    return locked


@transaction.atomic
def experiment_add_arm(experiment: Experiment, model_version_id: int, *, actor: str) -> Arm:
    """Add a model version to a (possibly running) experiment as a new arm."""
    model = ModelVersion.objects.filter(pk=model_version_id).first()
    if model is None:
        raise InvalidInput({"model_version": [f"no model version with id {model_version_id}"]})
    if experiment.status == Experiment.Status.STOPPED:
        raise Conflict({"experiment": ["a stopped experiment cannot get new arms"]})
    if Arm.objects.filter(experiment=experiment, model_version=model).exists():
        raise Conflict({"model_version": [f"{model} is already an arm of this experiment"]})
    arm_params: dict[str, Any] = {}
    if experiment.policy_kind == "validation":
        if model.validation_score is None:
            raise InvalidInput({"model_version": ["the validation policy needs the model's validation score"]})
        arm_params["score"] = model.validation_score
    with learning.policy_session(experiment.pk) as session:
        position = session.add_arm(arm_params)
        arm = Arm.objects.create(experiment=experiment, model_version=model, position=position)
    experiment_versions_bump(experiment.pk, control=True)
    audit_record("arm.added", actor, experiment=experiment, after={"position": position, "model": str(model)})
    return arm
