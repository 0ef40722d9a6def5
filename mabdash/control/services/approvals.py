"""Requests for a second person: four-eyes actions, proposed rollbacks under a veto window
or waiting for approval, and their expiry.

A request is filed by :func:`mabdash.control.services.actions.action_submit` (four-eyes) or
by the guardrails (proposals); approving one runs the same ``action_apply`` as a direct
action. Exactly one decision wins: the request row is locked while it is decided.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from mabdash.control.models import ActionRequest
from mabdash.control.services.action_params import reason_check
from mabdash.control.services.actions import Actor, action_apply, request_summary
from mabdash.control.services.webhooks import webhook_emit
from mabdash.errors import Conflict, Forbidden, NotFound
from mabdash.experiments.services.audit import audit_record


def _finish(request: ActionRequest, status: str, decided_by: str, outcome: str = "") -> None:
    request.status = status
    request.decided_by = decided_by
    request.decided_at = timezone.now()
    request.outcome = outcome
    request.save(update_fields=["status", "decided_by", "decided_at", "outcome"])


def _carry_out(request: ActionRequest, actor_name: str, decided_by: str, outcome: str) -> bool:
    """Apply the request's action in a savepoint; record APPLIED, or FAILED with the reason
    the action was refused (e.g. the arm it names was retired meanwhile)."""
    try:
        with transaction.atomic():
            action_apply(
                request.experiment,
                request.action,
                request.params,
                actor_name=actor_name,
                reason=request.reason,
                evidence={"request": request.pk, **request.evidence},
            )
    except Conflict as error:
        _finish(request, ActionRequest.Status.FAILED, decided_by, error.message)
        return False
    _finish(request, ActionRequest.Status.APPLIED, decided_by, outcome)
    return True


def request_decide(request_id: int, approve: bool, actor: Actor, *, reason: str = "") -> ActionRequest:
    """Approve (carry out) or reject / veto a pending request. Exactly one decision wins:
    the request row is locked, and a decided request answers 409 naming who decided."""
    reason = reason_check(reason)
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
    if expired and request.expires_at is not None:  # raised after the commit, so the expiry is recorded
        raise Conflict({"request": [f"request {request_id} expired at {request.expires_at.isoformat()}"]})
    return request


def _decide(request: ActionRequest, approve: bool, actor: Actor, reason: str) -> None:
    own = actor.user is not None and request.requested_by_user_id == actor.user.pk
    if own:
        raise Forbidden({"request": ["you cannot approve or reject your own request; another approver must"]})
    sentence = request.evidence.get("summary", request.action)
    if approve:
        _carry_out(request, f"{request.requested_by}, approved by {actor.name}", actor.name, reason)
    else:
        _finish(request, ActionRequest.Status.REJECTED, actor.name, reason)
    vetoed = request.mode == ActionRequest.Mode.VETO_WINDOW and not approve
    if request.status == ActionRequest.Status.APPLIED:
        words = f"Approved request #{request.pk} of {request.requested_by}"
    elif request.status == ActionRequest.Status.FAILED:
        words = (
            f"Approved request #{request.pk} of {request.requested_by}, "
            f"but it could not be carried out ({request.outcome})"
        )
    elif vetoed:
        words = f"Vetoed the proposed rollback #{request.pk}"
    else:
        words = f"Rejected request #{request.pk} of {request.requested_by}"
    audit_record(
        "rollback.vetoed" if vetoed else "approval.decided",
        actor.name,
        experiment=request.experiment,
        after=request_summary(request),
        reason=reason,
        evidence={"request": request.pk},
        summary=f"{words}: {sentence[0].lower()}{sentence[1:]}",
    )
    webhook_emit(request.experiment, "approval.decided", request_summary(request))


def request_withdraw(request_id: int, actor: Actor, *, reason: str = "") -> ActionRequest:
    """The requester takes back a pending request (nobody else may)."""
    reason = reason_check(reason)
    with transaction.atomic():
        request = ActionRequest.objects.select_for_update().select_related("experiment").filter(pk=request_id).first()
        if request is None:
            raise NotFound({"request": [f"no request {request_id}"]})
        mine = (actor.user is not None and request.requested_by_user_id == actor.user.pk) or (
            actor.user is None and request.requested_by_user_id is None and request.requested_by == actor.name
        )
        if not mine:
            raise Forbidden({"request": ["only whoever asked can withdraw a request"]})
        if request.status != ActionRequest.Status.PENDING:
            raise Conflict({"request": [f"request {request_id} is already {request.status}"]})
        _finish(request, ActionRequest.Status.WITHDRAWN, actor.name, reason or "withdrawn")
        audit_record(
            "approval.withdrawn",
            actor.name,
            experiment=request.experiment,
            after=request_summary(request),
            reason=reason,
            evidence={"request": request.pk},
            summary=f"Withdrew request #{request.pk}",
        )
    return request


def requests_expire_due(now: datetime | None = None) -> int:
    """Beat: pending requests past their expiry lapse; return how many."""
    now = now or timezone.now()
    count = 0
    for request in ActionRequest.objects.filter(status=ActionRequest.Status.PENDING, expires_at__lte=now):
        with transaction.atomic():
            if ActionRequest.objects.filter(pk=request.pk, status=ActionRequest.Status.PENDING).update(
                status=ActionRequest.Status.EXPIRED, decided_by="system", decided_at=now, outcome="expired"
            ):
                audit_record(
                    "approval.expired",
                    "system",
                    experiment=request.experiment,
                    after={"request": request.pk},
                    evidence={"request": request.pk},
                    summary=f"Request #{request.pk} of {request.requested_by} expired without a decision",
                )
                count += 1
    return count


def proposals_apply_due(now: datetime | None = None) -> int:
    """Beat: carry out proposed rollbacks whose veto window ended unvetoed; return how many."""
    now = now or timezone.now()
    count = 0
    due = ActionRequest.objects.filter(
        status=ActionRequest.Status.PENDING, mode=ActionRequest.Mode.VETO_WINDOW, apply_at__lte=now
    )
    for request_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            request = ActionRequest.objects.select_for_update().get(pk=request_id)
            if request.status != ActionRequest.Status.PENDING:
                continue  # decided meanwhile
            if _carry_out(request, "system (veto window passed)", "system", "veto window passed"):
                count += 1
    return count
