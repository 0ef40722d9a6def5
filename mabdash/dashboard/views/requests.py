"""Deciding on requests from the experiment page: approve, reject (veto), withdraw your own."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from mabdash.accounts.roles import VIEWER
from mabdash.control.models import ActionRequest
from mabdash.control.services.actions import Actor
from mabdash.control.services.approvals import request_decide, request_withdraw
from mabdash.dashboard.views.access import role_required
from mabdash.errors import ServiceError

DONE = {"approve": "approved", "reject": "rejected", "withdraw": "withdrawn"}


@require_POST
@role_required(VIEWER)
def request_decision(request: HttpRequest, request_id: int, decision: str) -> HttpResponse:
    action_request = get_object_or_404(ActionRequest.objects.select_related("experiment"), pk=request_id)
    if decision not in DONE:
        messages.error(request, f"decision: must be one of {', '.join(DONE)}")
        return redirect("experiment-detail", slug=action_request.experiment.slug)
    actor = Actor.of(request.user)
    reason = request.POST.get("reason", "")
    try:
        if decision == "withdraw":
            request_withdraw(request_id, actor, reason=reason)
        else:
            request_decide(request_id, decision == "approve", actor, reason=reason)
        messages.success(request, f"Request #{request_id} {DONE[decision]}.")
    except ServiceError as error:
        messages.error(request, error.message)
    return redirect("experiment-detail", slug=action_request.experiment.slug)
