"""Every change a person (or a guardrail) makes goes one way: submit → (approve) → apply →
audit → notify.

``action_submit`` is what a person or a script calls — the dashboard's forms and every
mutating endpoint of the API: it checks the role, the input and that the caller saw the
current *control* state, then either carries the action out (``direct``) or files a request
for a second person (``four_eyes``). ``action_apply`` carries an action out and is the only
function that does; it is also what an approved request and an automatic rollback run.
Every action is audited with the state before and after and one sentence in words.

Staleness: an action is refused as stale only when another control change (status, arms,
overrides, settings — ``Experiment.control_version``) happened since the caller loaded the
experiment; the bandit learning never makes an action stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from mabdash.accounts.authentication import KeyPrincipal
from mabdash.accounts.roles import APPROVER, KEY_ADMIN, OPERATOR, user_has_role
from mabdash.control.models import ActionRequest
from mabdash.control.services.action_params import STATUS_ACTIONS, action_params_check, reason_check
from mabdash.control.services.narrative import action_sentence
from mabdash.control.services.webhooks import webhook_emit
from mabdash.errors import Conflict, Forbidden, InvalidInput
from mabdash.experiments.models import Arm, Experiment, Override, experiment_versions_bump, lock_experiment
from mabdash.experiments.selectors import override_active
from mabdash.experiments.services import learning
from mabdash.experiments.services.audit import audit_record
from mabdash.experiments.services.experiments import (
    experiment_add_arm,
    experiment_archive,
    experiment_set_status,
    experiment_settings_apply,
    experiment_settings_check,
)
from mabdash.experiments.services.learning import PolicySession
from policies.guardrails import guardrail_config

AUDIT_KINDS = {
    "pin": "override.pin",
    "weights": "override.weights",
    "clear_override": "override.cleared",
    "pause_arm": "arm.paused",
    "rollback_arm": "rollback.applied",
    "restore_arm": "arm.restored",
    "promote": "experiment.promoted",
    "pause": "experiment.status",
    "resume": "experiment.status",
    "stop": "experiment.status",
    "add_arm": "arm.added",
    "settings": "experiment.settings",
    "archive": "experiment.archived",
}


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
    summary: str = ""


def _check_fresh(experiment: Experiment, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != experiment.control_version:
        last = experiment.audit_entries.order_by("-created_at", "-id").first()
        who = f" ({last.summary} — {last.actor})" if last and last.summary else ""
        raise Conflict(
            {
                "expected_version": [
                    f"someone changed this experiment since you loaded it{who}; reload to see the change and "
                    f"act again (control version {expected_version}, now {experiment.control_version})"
                ]
            }
        )


def control_state(experiment: Experiment) -> dict[str, Any]:
    """The controllable state, for the audit trail's before and after."""
    override = override_active(experiment.pk)
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
    reason = reason_check(reason)
    clean = action_params_check(experiment, action, params)
    if action == "rollback_arm" and not reason:
        raise InvalidInput({"reason": ["say why the arm is rolled back"]})
    with transaction.atomic():
        locked = lock_experiment(experiment.pk)
        _check_fresh(locked, expected_version)
        if locked.approval_mode == Experiment.ApprovalMode.FOUR_EYES:
            request = request_create(
                locked, action, clean, ActionRequest.Mode.FOUR_EYES, requested_by=actor, reason=reason
            )
            return ActionOutcome("requested", action, request=request, summary=action_sentence(locked, action, clean))
        after = action_apply(locked, action, clean, actor_name=actor.name, reason=reason)
        return ActionOutcome("applied", action, after=after, summary=action_sentence(locked, action, clean))


# --------------------------------------------------------------------------- apply
def _end_override(experiment: Experiment, why: str, now: datetime) -> Override | None:
    """End the override in force; one past its expiry is ended as expired instead."""
    override = Override.objects.filter(experiment=experiment, ended_at__isnull=True).first()
    if override is not None and override.expires_at is not None and override.expires_at <= now:
        override.ended_at, override.end_reason = override.expires_at, "expired"
        override.save(update_fields=["ended_at", "end_reason"])
        return None
    if override is not None:
        override.ended_at = now
        override.end_reason = why
        override.save(update_fields=["ended_at", "end_reason"])
    return override


def _set_arm(experiment: Experiment, position: int, status: str, session: PolicySession | None) -> None:
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
    if session is not None:
        session.set_active(position, status == Arm.Status.ACTIVE)
    else:
        with learning.policy_session(experiment.pk) as own:
            own.set_active(position, status == Arm.Status.ACTIVE)
    override = override_active(experiment.pk)
    pinned = override.position if override is not None and override.kind == Override.Kind.PIN else None
    if status != Arm.Status.ACTIVE and pinned == position:
        _end_override(experiment, "arm excluded", timezone.now())


def _apply(
    experiment: Experiment,
    action: str,
    params: dict[str, Any],
    actor_name: str,
    reason: str,
    session: PolicySession | None,
) -> None:
    now = timezone.now()
    position = params.get("arm", -1)
    if action in STATUS_ACTIONS:
        experiment_set_status(experiment, STATUS_ACTIONS[action])
    elif action in ("pin", "promote"):
        arm = Arm.objects.get(experiment=experiment, position=position)
        if arm.status != Arm.Status.ACTIVE:
            raise Conflict({"arm": [f"arm {position} is {arm.status}; restore it first"]})
    if action in ("pin", "weights"):
        _end_override(experiment, "replaced", now)
        minutes = params.get("expires_in_minutes")
        Override.objects.create(
            experiment=experiment,
            kind=action,
            position=position if action == "pin" else None,
            weights=params.get("weights"),
            created_by=actor_name,
            reason=reason,
            expires_at=now + timedelta(minutes=minutes) if minutes else None,
        )
    elif action == "clear_override":
        if _end_override(experiment, "cleared", now) is None:
            raise Conflict({"action": ["there is no active pin or weights to clear"]})
    elif action == "pause_arm":
        _set_arm(experiment, position, Arm.Status.PAUSED, session)
    elif action == "rollback_arm":
        _set_arm(experiment, position, Arm.Status.ROLLED_BACK, session)
    elif action == "restore_arm":
        _set_arm(experiment, position, Arm.Status.ACTIVE, session)
    elif action == "promote":
        _end_override(experiment, "promoted", now)
        Experiment.objects.filter(pk=experiment.pk).update(default_position=position, status=Experiment.Status.STOPPED)
    elif action == "add_arm":
        experiment_add_arm(experiment, params["model_version"], session=session)
    elif action == "settings":
        try:  # checked again: other changes may have happened since it was requested
            changes = experiment_settings_check(experiment, params["settings"])
        except InvalidInput as error:
            raise Conflict(error.errors) from None
        experiment_settings_apply(experiment, changes, session=session)
    elif action == "archive":
        _end_override(experiment, "archived", now)
        experiment_archive(experiment)


def action_apply(
    experiment: Experiment,
    action: str,
    params: dict[str, Any],
    *,
    actor_name: str,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
    session: PolicySession | None = None,
    summary: str = "",
) -> dict[str, Any]:
    """Carry out an action now (in the caller's transaction); return the state after it.

    The single implementation behind buttons, API calls, approved requests and automatic
    rollbacks. ``session``: the policy session the caller already holds (the learning
    cycle), so an excluded arm is written with the rest of the state, once. ``summary``:
    the sentence for the audit trail when the caller knows better (a guardrail's evidence).
    """
    with transaction.atomic():
        experiment = lock_experiment(experiment.pk)
        before = control_state(experiment)
        sentence = summary or action_sentence(experiment, action, params)
        _apply(experiment, action, params, actor_name, reason, session)
        experiment_versions_bump(experiment.pk, control=True)
        experiment.refresh_from_db()
        after = control_state(experiment)
        audit_record(
            AUDIT_KINDS[action],
            actor_name,
            experiment=experiment,
            before=before,
            after=after,
            reason=reason,
            evidence={"action": action, "params": params, **(evidence or {})},
            summary=sentence,
        )
        if action == "rollback_arm":
            webhook_emit(
                experiment,
                "rollback.applied",
                {
                    "arm": params["arm"],
                    "by": actor_name,
                    "reason": reason,
                    "summary": sentence,
                    "evidence": evidence or {},
                },
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
    summary: str = "",
) -> ActionRequest:
    """File an action for a decision by an approver (or a veto window)."""
    now = timezone.now()
    config = guardrail_config(experiment.guardrails)
    sentence = summary or action_sentence(experiment, action, params)
    request = ActionRequest.objects.create(
        experiment=experiment,
        action=action,
        params=params,
        mode=mode,
        requested_by=requested_by.name,
        requested_by_user=requested_by.user,
        reason=reason,
        evidence={"summary": sentence, **(evidence or {})},
        expires_at=None
        if mode == ActionRequest.Mode.VETO_WINDOW
        else now + timedelta(minutes=config["request_ttl_minutes"]),
        apply_at=now + timedelta(minutes=config["veto_minutes"]) if mode == ActionRequest.Mode.VETO_WINDOW else None,
    )
    proposal = action == "rollback_arm" and requested_by.name == "system"
    kind = "rollback.proposed" if proposal else "approval.requested"
    wording = "Proposed" if proposal else "Asked for approval"
    audit_record(
        kind,
        requested_by.name,
        experiment=experiment,
        after=request_summary(request),
        reason=reason,
        evidence=request.evidence,
        summary=f"{wording} (request #{request.pk}): {sentence[0].lower()}{sentence[1:]}",
    )
    webhook_emit(experiment, kind, request_summary(request))
    if kind == "rollback.proposed" and mode == ActionRequest.Mode.APPROVAL:
        webhook_emit(experiment, "approval.requested", request_summary(request))
    return request


def request_summary(request: ActionRequest) -> dict[str, Any]:
    """A request as plain JSON types (audit records, webhooks)."""
    return {
        "request": request.pk,
        "action": request.action,
        "params": request.params,
        "mode": request.mode,
        "status": request.status,
        "requested_by": request.requested_by,
        "summary": request.evidence.get("summary", ""),
        "expires_at": request.expires_at.isoformat() if request.expires_at else None,
        "apply_at": request.apply_at.isoformat() if request.apply_at else None,
        "decided_by": request.decided_by or None,
        "outcome": request.outcome or None,
    }


def overrides_expire_due(now: datetime | None = None) -> int:
    """Beat: end overrides past their expiry (serving stopped using them at once); return how many."""
    now = now or timezone.now()
    count = 0
    for override in Override.objects.filter(ended_at__isnull=True, expires_at__lte=now).select_related("experiment"):
        with transaction.atomic():
            if Override.objects.filter(pk=override.pk, ended_at__isnull=True).update(
                ended_at=override.expires_at, end_reason="expired"
            ):
                experiment_versions_bump(override.experiment_id, control=True)
                what = "pin" if override.kind == Override.Kind.PIN else "manual weights"
                audit_record(
                    "override.expired",
                    "system",
                    experiment=override.experiment,
                    before={"override": override.describe()},
                    after={"override": None},
                    summary=f"The {what} expired: the policy's split is served again",
                )
                webhook_emit(override.experiment, "override.expired", override.describe())
                count += 1
    return count
