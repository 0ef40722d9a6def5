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
from mabdash.control.services.actions import Actor, _request_summary, action_apply
from mabdash.control.services.webhooks import webhook_emit
from mabdash.errors import Conflict, Forbidden, NotFound
from mabdash.experiments.services.audit import audit_record


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
    if expired and request.expires_at is not None:  # raised after the commit, so the expiry is recorded
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
    audit_record(
        "rollback.vetoed" if vetoed else "approval.decided",
        actor.name,
        experiment=request.experiment,
        after=_request_summary(request),
        reason=reason,
    )
    webhook_emit(request.experiment, "approval.decided", _request_summary(request))


def requests_expire_due(now: datetime | None = None) -> int:
    """Beat: pending requests past their expiry lapse; return how many."""
    now = now or timezone.now()
    count = 0
    for request in ActionRequest.objects.filter(status=ActionRequest.Status.PENDING, expires_at__lte=now):
        with transaction.atomic():
            if ActionRequest.objects.filter(pk=request.pk, status=ActionRequest.Status.PENDING).update(
                status=ActionRequest.Status.EXPIRED, decided_by="system", decided_at=now, outcome="expired"
            ):
                audit_record("approval.expired", "system", experiment=request.experiment, after={"request": request.pk})
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
                count += 1
            except Conflict as error:
                _finish(request, ActionRequest.Status.FAILED, "system", error.message)
    return count
