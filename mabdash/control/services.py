"""Operator actions and approvals: the one path for the dashboard buttons, the REST API and
the automatic rollbacks.

``action_submit`` is what a person or a script calls: it checks the role, the input and that
the caller saw the current state, then either carries the action out (``direct``) or files
a request for a second person (``four_eyes``). ``action_apply`` carries an action out and
is the only function that does; it is also what an approved request and an automatic
rollback run. Every action is audited with the state before and after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mabdash.accounts.authentication import KeyPrincipal
from mabdash.accounts.roles import APPROVER, KEY_ADMIN, OPERATOR, user_has_role
from mabdash.control import webhooks
from mabdash.control.guardrail_config import guardrail_config
from mabdash.control.models import ActionRequest, Override
from mabdash.errors import Conflict, Forbidden, InvalidInput, NotFound
from mabdash.experiments import learning
from mabdash.experiments.models import Arm, Experiment, lock_experiment
from mabdash.experiments.services import audit, experiment_set_status

ARM_ACTIONS = ("pin", "pause_arm", "rollback_arm", "restore_arm", "promote")
ACTIONS = (*ARM_ACTIONS, "weights", "clear_override", "pause", "resume", "stop")
MAX_OVERRIDE_MINUTES = 60 * 24 * 365


@dataclass(frozen=True)
class Actor:
    """Who acts: a dashboard user, a personal API key (its user), an automation key, or the system."""

    name: str
    user: User | None = None
    can_operate: bool = False
    can_approve: bool = False

    @classmethod
    def of(cls, principal: Any) -> Actor:
        if isinstance(principal, KeyPrincipal):
            return cls(name=principal.username, can_operate=principal.role == KEY_ADMIN)
        return cls(
            name=principal.username,
            user=principal,
            can_operate=user_has_role(principal, OPERATOR),
            can_approve=user_has_role(principal, APPROVER),
        )


SYSTEM = Actor(name="system", can_operate=True)


@dataclass
class ActionOutcome:
    """What happened to a submitted action: ``applied`` now, or ``requested`` for approval."""

    outcome: str
    action: str
    after: dict[str, Any] = field(default_factory=dict)
    request: ActionRequest | None = None


# --------------------------------------------------------------------------- validation
def _check_params(experiment: Experiment, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise an action's parameters; errors name the field."""
    if action not in ACTIONS:
        raise InvalidInput({"action": [f"must be one of {', '.join(ACTIONS)}"]})
    n_arms = experiment.arms.count()
    clean: dict[str, Any] = {}
    if action in ARM_ACTIONS:
        position = params.get("arm")
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < n_arms:
            raise InvalidInput({"arm": [f"must be an arm position in [0, {n_arms})"]})
        clean["arm"] = position
    if action == "weights":
        weights = params.get("weights")
        if not isinstance(weights, list) or len(weights) != n_arms:
            raise InvalidInput({"weights": [f"must be a list of {n_arms} numbers, one per arm"]})
        if any(
            isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0 for w in weights
        ):
            raise InvalidInput({"weights": ["every weight must be a finite number ≥ 0"]})
        if sum(weights) <= 0:
            raise InvalidInput({"weights": ["at least one weight must be positive"]})
        clean["weights"] = [float(w) for w in weights]
    if action in ("pin", "weights"):
        minutes = params.get("expires_in_minutes")
        if minutes is not None:
            if (
                isinstance(minutes, bool)
                or not isinstance(minutes, (int, float))
                or not 0 < minutes <= MAX_OVERRIDE_MINUTES
            ):
                raise InvalidInput({"expires_in_minutes": [f"must be a number in (0, {MAX_OVERRIDE_MINUTES}]"]})
            clean["expires_in_minutes"] = float(minutes)
    return clean


def _check_fresh(experiment: Experiment, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != experiment.serving_version:
        raise Conflict(
            {
                "expected_version": [
                    f"the experiment changed since you loaded it (version {expected_version}, now "
                    f"{experiment.serving_version}); reload and try again"
                ]
            }
        )


def _state(experiment: Experiment) -> dict[str, Any]:
    """The controllable state, for the audit trail's before and after."""
    override = Override.objects.filter(experiment=experiment, ended_at__isnull=True).first()
    return {
        "status": experiment.status,
        "default_arm": experiment.default_position,
        "arms": {str(a.position): a.status for a in experiment.arms.order_by("position")},
        "override": override.describe() if override else None,
    }


# --------------------------------------------------------------------------- submit
def action_submit(
    experiment: Experiment,
    action: str,
    params: dict[str, Any],
    actor: Actor,
    *,
    reason: str = "",
    expected_version: int | None = None,
) -> ActionOutcome:
    """Carry out an operator action, or file it for approval under four-eyes."""
    if not actor.can_operate:
        raise Forbidden({"action": ["this needs the operator role (or an admin API key)"]})
    clean = _check_params(experiment, action, params)
    if action == "rollback_arm" and not reason.strip():
        raise InvalidInput({"reason": ["say why the arm is rolled back"]})
    with transaction.atomic():
        locked = lock_experiment(experiment.pk)
        _check_fresh(locked, expected_version)
        if locked.approval_mode == Experiment.ApprovalMode.FOUR_EYES:
            request = request_create(
                locked, action, clean, ActionRequest.Mode.FOUR_EYES, requested_by=actor, reason=reason
            )
            return ActionOutcome(outcome="requested", action=action, request=request)
        after = action_apply(locked, action, clean, actor_name=actor.name, reason=reason)
        return ActionOutcome(outcome="applied", action=action, after=after)


# --------------------------------------------------------------------------- apply
def _end_override(experiment: Experiment, why: str, now: datetime) -> Override | None:
    override = Override.objects.filter(experiment=experiment, ended_at__isnull=True).first()
    if override is not None:
        override.ended_at = now
        override.end_reason = why
        override.save(update_fields=["ended_at", "end_reason"])
    return override


def _bump(experiment: Experiment) -> None:
    Experiment.objects.filter(pk=experiment.pk).update(serving_version=F("serving_version") + 1)


def _set_arm(experiment: Experiment, position: int, status: str) -> None:
    arm = Arm.objects.select_for_update().get(experiment=experiment, position=position)
    active = Arm.objects.filter(experiment=experiment, status=Arm.Status.ACTIVE)
    if status != Arm.Status.ACTIVE:
        if arm.status != Arm.Status.ACTIVE:
            raise Conflict({"arm": [f"arm {position} is already {arm.status}"]})
        if active.count() == 1:
            raise Conflict({"arm": [f"arm {position} is the last active arm; restore another arm first"]})
    elif arm.status == Arm.Status.ACTIVE:
        raise Conflict({"arm": [f"arm {position} is already active"]})
    arm.status = status
    arm.save(update_fields=["status"])
    learning.policy_set_active(experiment.pk, position, status == Arm.Status.ACTIVE)
    override = Override.objects.filter(experiment=experiment, ended_at__isnull=True, kind=Override.Kind.PIN).first()
    if status != Arm.Status.ACTIVE and override is not None and override.position == position:
        _end_override(experiment, "arm excluded", timezone.now())


AUDIT_KINDS = {
    "pin": "override.pin",
    "weights": "override.weights",
    "clear_override": "override.cleared",
    "pause_arm": "arm.paused",
    "rollback_arm": "rollback.applied",
    "restore_arm": "arm.restored",
    "promote": "experiment.promoted",
}
STATUS_ACTIONS = {"pause": "paused", "resume": "running", "stop": "stopped"}


def action_apply(
    experiment: Experiment,
    action: str,
    params: dict[str, Any],
    *,
    actor_name: str,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Carry out an action now (in the caller's transaction); return the state after it.

    The single implementation behind buttons, API calls, approved requests and automatic
    rollbacks.
    """
    now = timezone.now()
    with transaction.atomic():
        experiment = lock_experiment(experiment.pk)
        before = _state(experiment)
        if action in STATUS_ACTIONS:
            experiment_set_status(experiment, STATUS_ACTIONS[action], actor=actor_name, reason=reason)
            experiment.refresh_from_db()
            return _state(experiment)
        position = params.get("arm")
        if action in ("pin", "promote"):
            arm = Arm.objects.get(experiment=experiment, position=position)
            if arm.status != Arm.Status.ACTIVE:
                raise Conflict({"arm": [f"arm {position} is {arm.status}; restore it first"]})
        if action in ("pin", "weights"):
            _end_override(experiment, "replaced", now)
            minutes = params.get("expires_in_minutes")
            Override.objects.create(
                experiment=experiment,
                kind=action,
                position=position,
                weights=params.get("weights"),
                created_by=actor_name,
                reason=reason,
                expires_at=now + timedelta(minutes=minutes) if minutes else None,
            )
        elif action == "clear_override":
            if _end_override(experiment, "cleared", now) is None:
                raise Conflict({"action": ["there is no active pin or weights to clear"]})
        elif action == "pause_arm":
            _set_arm(experiment, position, Arm.Status.PAUSED)
        elif action == "rollback_arm":
            _set_arm(experiment, position, Arm.Status.ROLLED_BACK)
        elif action == "restore_arm":
            _set_arm(experiment, position, Arm.Status.ACTIVE)
        elif action == "promote":
            _end_override(experiment, "promoted", now)
            Experiment.objects.filter(pk=experiment.pk).update(
                default_position=position, status=Experiment.Status.STOPPED
            )
        _bump(experiment)
        experiment.refresh_from_db()
        after = _state(experiment)
        audit(
            AUDIT_KINDS[action],
            actor_name,
            experiment=experiment,
            before=before,
            after=after,
            reason=reason,
            evidence={"params": params, **(evidence or {})},
        )
        if action == "rollback_arm":
            webhooks.emit(
                experiment,
                "rollback.applied",
                {"arm": position, "by": actor_name, "reason": reason, "evidence": evidence or {}},
            )
        return after


# --------------------------------------------------------------------------- requests
def request_create(
    experiment: Experiment,
    action: str,
    params: dict[str, Any],
    mode: str,
    *,
    requested_by: Actor,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
) -> ActionRequest:
    """File an action for a decision by an approver (or a veto window)."""
    now = timezone.now()
    config = guardrail_config(experiment)
    request = ActionRequest.objects.create(
        experiment=experiment,
        action=action,
        params=params,
        mode=mode,
        requested_by=requested_by.name,
        requested_by_user=requested_by.user,
        reason=reason,
        evidence=evidence or {},
        expires_at=None
        if mode == ActionRequest.Mode.VETO_WINDOW
        else now + timedelta(minutes=config["request_ttl_minutes"]),
        apply_at=now + timedelta(minutes=config["veto_minutes"]) if mode == ActionRequest.Mode.VETO_WINDOW else None,
    )
    kind = "rollback.proposed" if action == "rollback_arm" and requested_by.name == "system" else "approval.requested"
    audit(
        kind,
        requested_by.name,
        experiment=experiment,
        after=_request_summary(request),
        reason=reason,
        evidence=request.evidence,
    )
    webhooks.emit(experiment, kind, _request_summary(request))
    if kind == "rollback.proposed" and mode == ActionRequest.Mode.APPROVAL:
        webhooks.emit(experiment, "approval.requested", _request_summary(request))
    return request


def _request_summary(request: ActionRequest) -> dict[str, Any]:
    return {
        "request": request.pk,
        "action": request.action,
        "params": request.params,
        "mode": request.mode,
        "status": request.status,
        "requested_by": request.requested_by,
        "expires_at": request.expires_at.isoformat() if request.expires_at else None,
        "apply_at": request.apply_at.isoformat() if request.apply_at else None,
        "decided_by": request.decided_by or None,
        "outcome": request.outcome or None,
    }


def _finish(request: ActionRequest, status: str, decided_by: str, outcome: str = "") -> None:
    request.status = status
    request.decided_by = decided_by
    request.decided_at = timezone.now()
    request.outcome = outcome
    request.save(update_fields=["status", "decided_by", "decided_at", "outcome"])


def request_decide(request_id: int, approve: bool, actor: Actor, *, reason: str = "") -> ActionRequest:
    """Approve (carry out) or reject / veto a pending request. Exactly one decision wins:
    the request row is locked, and a decided request answers 409 naming who decided."""
    if not actor.can_approve:
        raise Forbidden({"request": ["deciding on requests needs the approver role"]})
    with transaction.atomic():
        request = ActionRequest.objects.select_for_update().select_related("experiment").filter(pk=request_id).first()
        if request is None:
            raise NotFound({"request": [f"no request {request_id}"]})
        if request.status != ActionRequest.Status.PENDING:
            who = f" by {request.decided_by}" if request.decided_by else ""
            raise Conflict({"request": [f"request {request_id} is already {request.status}{who}"]})
        expired = request.expires_at is not None and request.expires_at <= timezone.now()
        if expired:
            _finish(request, ActionRequest.Status.EXPIRED, "system", "expired before a decision")
        else:
            _decide(request, approve, actor, reason)
    if expired:  # raised after the commit, so the expiry is recorded
        raise Conflict({"request": [f"request {request_id} expired at {request.expires_at.isoformat()}"]})
    return request


def _decide(request: ActionRequest, approve: bool, actor: Actor, reason: str) -> None:
    own = actor.user is not None and request.requested_by_user_id == actor.user.pk
    if own:
        raise Forbidden({"request": ["you cannot approve or reject your own request; another approver must"]})
    if approve:
        try:
            with transaction.atomic():
                action_apply(
                    request.experiment,
                    request.action,
                    request.params,
                    actor_name=f"{request.requested_by}, approved by {actor.name}",
                    reason=request.reason,
                    evidence={"request": request.pk, **request.evidence},
                )
            _finish(request, ActionRequest.Status.APPLIED, actor.name, reason)
        except Conflict as error:
            _finish(request, ActionRequest.Status.FAILED, actor.name, error.message)
    else:
        _finish(request, ActionRequest.Status.REJECTED, actor.name, reason)
    vetoed = request.mode == ActionRequest.Mode.VETO_WINDOW and not approve
    audit(
        "rollback.vetoed" if vetoed else "approval.decided",
        actor.name,
        experiment=request.experiment,
        after=_request_summary(request),
        reason=reason,
    )
    webhooks.emit(request.experiment, "approval.decided", _request_summary(request))


def due_process(now: datetime | None = None) -> dict[str, int]:
    """Beat: expire overrides and requests, apply unvetoed proposals whose window ended."""
    now = now or timezone.now()
    counts = {"overrides_expired": 0, "requests_expired": 0, "proposals_applied": 0}
    for override in Override.objects.filter(ended_at__isnull=True, expires_at__lte=now).select_related("experiment"):
        with transaction.atomic():
            if Override.objects.filter(pk=override.pk, ended_at__isnull=True).update(
                ended_at=now, end_reason="expired"
            ):
                _bump(override.experiment)
                audit("override.expired", "system", experiment=override.experiment, before=override.describe())
                webhooks.emit(override.experiment, "override.expired", override.describe())
                counts["overrides_expired"] += 1
    for request in ActionRequest.objects.filter(status=ActionRequest.Status.PENDING, expires_at__lte=now):
        with transaction.atomic():
            if ActionRequest.objects.filter(pk=request.pk, status=ActionRequest.Status.PENDING).update(
                status=ActionRequest.Status.EXPIRED, decided_by="system", decided_at=now, outcome="expired"
            ):
                audit("approval.expired", "system", experiment=request.experiment, after={"request": request.pk})
                counts["requests_expired"] += 1
    due = ActionRequest.objects.filter(
        status=ActionRequest.Status.PENDING, mode=ActionRequest.Mode.VETO_WINDOW, apply_at__lte=now
    )
    for request_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            request = ActionRequest.objects.select_for_update().get(pk=request_id)
            if request.status != ActionRequest.Status.PENDING:
                continue  # decided meanwhile
            try:
                with transaction.atomic():
                    action_apply(
                        request.experiment,
                        request.action,
                        request.params,
                        actor_name="system (veto window passed)",
                        reason=request.reason,
                        evidence={"request": request.pk, **request.evidence},
                    )
                _finish(request, ActionRequest.Status.APPLIED, "system", "veto window passed")
                counts["proposals_applied"] += 1
            except Conflict as error:
                _finish(request, ActionRequest.Status.FAILED, "system", error.message)
    return counts
