"""Writes for experiments: creation, status, arms, settings, archiving.

Changes people make go through ``mabdash.control`` (submit → approve → apply → audit),
which calls these to carry them out — inside its transaction, the experiment locked — and
then announces the change once (``experiment_versions_bump``) and audits it.
"""

from __future__ import annotations

import inspect
from typing import Any

from django.db import transaction
from django.utils import timezone

import policies
from mabdash.errors import Conflict, InvalidInput
from mabdash.experiments.models import (
    SLUG_VALIDATOR,
    Arm,
    Experiment,
    ModelVersion,
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
    thompson = kind in ("thompson", "discounted_thompson")
    if thompson and reward_kind == Experiment.RewardKind.REAL:
        if params.setdefault("model", "gaussian") != "gaussian":
            raise InvalidInput({"policy_params": ["model: real rewards need the gaussian model"]})
    elif (
        thompson
        and reward_kind == Experiment.RewardKind.BOUNDED
        and params.setdefault("model", "gaussian") == "gaussian"
    ):
        # Fractional rewards: a Beta posterior would count each reward as one coin flip and
        # waste what its spread says; the Normal–Gamma model learns the variance (regret
        # 3.8 vs 14.1 on Beta(5, 5) vs Beta(6, 4) rewards over 5,000 rounds, 20 seeds — see
        # tests/policies/test_convergence.py). Priors for rewards in [0, 1].
        params.setdefault("prior_mean", 0.5)
        params.setdefault("prior_variance", 0.25)
    if kind == "ab_test" and params.get("require_significance") and reward_kind == Experiment.RewardKind.REAL:
        raise InvalidInput(
            {"policy_params": ["require_significance: the anytime test needs rewards in [0, 1] (binary or bounded)"]}
        )
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
    retention_days: int | None = None,
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
    if not _valid_retention(retention_days):
        errors["retention_days"] = [RETENTION_HELP]
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
        retention_days=retention_days,
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
        summary=f"Created the experiment ({policy_kind}, {len(models)} models: {', '.join(str(m) for m in models)})",
    )
    return experiment


@transaction.atomic
def experiment_set_status(experiment: Experiment, status: str) -> Experiment:
    """Move an experiment to ``status`` along the allowed transitions (``mabdash.control`` audits it)."""
    locked = lock_experiment(experiment.pk)
    if status not in Experiment.Status.values:
        raise InvalidInput({"status": [f"must be one of {', '.join(Experiment.Status.values)}"]})
    if status == locked.status:
        raise Conflict({"status": [f"the experiment is already {status}"]})
    allowed = STATUS_TRANSITIONS[Experiment.Status(locked.status)]
    if status not in allowed:
        raise Conflict({"status": [f"cannot go from {locked.status} to {status}"]})
    Experiment.objects.filter(pk=locked.pk).update(status=status)
    locked.refresh_from_db()
    return locked


@transaction.atomic
def experiment_add_arm(
    experiment: Experiment, model_version_id: int, *, session: learning.PolicySession | None = None
) -> Arm:
    """Add a model version to a (possibly running) experiment as a new arm (``mabdash.control`` audits it)."""
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
    if session is not None:
        position = session.add_arm(arm_params)
    else:
        with learning.policy_session(experiment.pk) as own:
            position = own.add_arm(arm_params)
    return Arm.objects.create(experiment=experiment, model_version=model, position=position)


# --------------------------------------------------------------------------- settings
#: What a person may change after creation (through mabdash.control's action "settings").
SETTINGS = (
    "name",
    "description",
    "policy",
    "reward_window_seconds",
    "retention_days",
    "default_arm",
    "guardrails",
    "approval_mode",
    "rollback_mode",
)


RETENTION_HELP = "a whole number of days in [1, 36500], or null for the global default"


def _valid_retention(days: Any) -> bool:
    return days is None or (not isinstance(days, bool) and isinstance(days, int) and 1 <= days <= 36_500)


def experiment_settings(experiment: Experiment) -> dict[str, Any]:
    """The experiment's current settings, in the shape :func:`experiment_settings_check` takes."""
    return {
        "name": experiment.name,
        "description": experiment.description,
        "policy": {"kind": experiment.policy_kind, "params": experiment.policy_params, "seed": experiment.policy_seed},
        "reward_window_seconds": experiment.reward_window_seconds,
        "retention_days": experiment.retention_days,
        "default_arm": experiment.default_position,
        "guardrails": experiment.guardrails,
        "approval_mode": experiment.approval_mode,
        "rollback_mode": experiment.rollback_mode,
    }


def _user_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Strategy parameters as a person sets them (what the experiment fills in left out)."""
    return {k: v for k, v in params.items() if not (kind == "validation" and k == "scores")}


def _same_policy(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether a policy setting is the current one (what the experiment fills in aside)."""
    same_kind = new["kind"] == old["kind"] and new["seed"] == old["seed"]
    return same_kind and _user_params(new["kind"], new["params"]) == _user_params(old["kind"], old["params"])


def experiment_settings_check(experiment: Experiment, changes: dict[str, Any]) -> dict[str, Any]:
    """Validate a change of settings with the rules of creation; return only what changes.

    Raises ``InvalidInput`` naming every bad field; an empty change is refused too.
    """
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(changes) - set(SETTINGS))
    for name in unknown:
        errors[name] = [f"not a setting; expected one of {', '.join(SETTINGS)}"]
    current = experiment_settings(experiment)
    clean: dict[str, Any] = {}
    if "name" in changes:
        name = changes["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors["name"] = ["1-200 characters"]
        clean["name"] = name
    if "description" in changes:
        description = changes["description"]
        if not isinstance(description, str) or len(description) > 10_000:
            errors["description"] = ["at most 10,000 characters"]
        clean["description"] = description
    n_arms = experiment.arms.count()
    if "reward_window_seconds" in changes:
        window = changes["reward_window_seconds"]
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 31_536_000:
            errors["reward_window_seconds"] = ["an integer number of seconds in [1, 31536000]"]
        clean["reward_window_seconds"] = window
    if "retention_days" in changes:
        if not _valid_retention(changes["retention_days"]):
            errors["retention_days"] = [RETENTION_HELP]
        clean["retention_days"] = changes["retention_days"]
    if "default_arm" in changes:
        arm = changes["default_arm"]
        if isinstance(arm, bool) or not isinstance(arm, int) or not 0 <= arm < n_arms:
            errors["default_arm"] = [f"must be an arm position in [0, {n_arms})"]
        clean["default_arm"] = arm
    if "guardrails" in changes:
        try:
            clean["guardrails"] = validate_guardrails(changes["guardrails"])
        except ValueError as error:
            errors["guardrails"] = [str(error)]
    for name, choices in (
        ("approval_mode", Experiment.ApprovalMode.values),
        ("rollback_mode", Experiment.RollbackMode.values),
    ):
        if name in changes:
            if changes[name] not in choices:
                errors[name] = [f"must be one of {', '.join(choices)}"]
            clean[name] = changes[name]
    if "policy" in changes:
        policy = changes["policy"]
        if not isinstance(policy, dict) or set(policy) - {"kind", "params", "seed"} or "kind" not in policy:
            errors["policy"] = ["must be an object {kind, params?, seed?}"]
        else:
            kind, seed = policy["kind"], policy.get("seed", experiment.policy_seed)
            params = policy.get("params") or {}
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
                errors["policy.seed"] = ["an integer in [0, 2147483647]"]
            elif not isinstance(params, dict):
                errors["policy.params"] = ["must be a JSON object"]
            else:
                models = [arm.model_version for arm in experiment.arms.select_related("model_version")]
                default = clean.get("default_arm", experiment.default_position)
                try:
                    full = _policy_params(kind, params, experiment.reward_kind, models, default)
                    _check_policy(kind, n_arms, full, seed)
                    clean["policy"] = {"kind": kind, "params": full, "seed": seed}
                except InvalidInput as error:
                    errors.update({f"policy.{k.removeprefix('policy_')}": v for k, v in error.errors.items()})
    if errors:
        raise InvalidInput(errors)
    changed = {k: v for k, v in clean.items() if v != current[k]}
    if "policy" in changed and _same_policy(changed["policy"], current["policy"]):
        del changed["policy"]
    if not changed:
        raise InvalidInput({"settings": ["nothing changes: every value is already set"]})
    return changed


def experiment_settings_apply(
    experiment: Experiment, changes: dict[str, Any], *, session: learning.PolicySession | None = None
) -> None:
    """Write checked settings (inside the caller's transaction, experiment locked).

    A new strategy or new parameters keep everything learned: the policy is rebuilt from the
    reward ledger under the new settings (see ``PolicySession.reconfigure``).
    """
    fields = {
        "name": "name",
        "description": "description",
        "reward_window_seconds": "reward_window_seconds",
        "retention_days": "retention_days",
        "default_arm": "default_position",
        "guardrails": "guardrails",
        "approval_mode": "approval_mode",
        "rollback_mode": "rollback_mode",
    }
    updates = {fields[k]: v for k, v in changes.items() if k in fields}
    if "policy" in changes:
        policy = changes["policy"]
        updates.update(policy_kind=policy["kind"], policy_params=policy["params"], policy_seed=policy["seed"])
        if session is not None:
            session.reconfigure(policy["kind"], policy["params"], policy["seed"])
        else:
            with learning.policy_session(experiment.pk) as own:
                own.reconfigure(policy["kind"], policy["params"], policy["seed"])
    Experiment.objects.filter(pk=experiment.pk).update(**updates)


def experiment_archive(experiment: Experiment) -> None:
    """Stop the experiment (serving its default arm) and hide it from the overview."""
    if experiment.status != Experiment.Status.STOPPED:
        Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.STOPPED)
    Experiment.objects.filter(pk=experiment.pk).update(archived_at=timezone.now())


def policy_defaults(kind: str) -> dict[str, Any]:
    """The strategy's parameters a person may set, with their defaults (for forms)."""
    cls = policies.policy_class(kind)
    signature = inspect.signature(cls.__init__)
    skip = {"self", "n_arms", "seed", *cls.per_arm_params}
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name not in skip and parameter.default is not inspect.Parameter.empty and name != "scores"
    }


def strategy_params(experiment: Experiment, kind: str) -> dict[str, Any] | None:
    """The parameters strategy ``kind`` would run with on this experiment — its own if it is
    the experiment's strategy, else the defaults filled in like at creation (validation
    scores, the default arm, the reward model) — or None if it cannot run here (validation
    without scores for every model)."""
    models = [arm.model_version for arm in experiment.arms.select_related("model_version").order_by("position")]
    own = dict(experiment.policy_params) if kind == experiment.policy_kind else {}
    if kind == "validation":
        own.pop("scores", None)
    try:
        return _policy_params(kind, own, experiment.reward_kind, models, experiment.default_position)
    except InvalidInput:
        return None
