"""The experiment page: live charts and arms table, the operator's controls, the history.

Every control posts to :func:`experiment_action`, which goes the one way of every change
(``mabdash.control``): applied at once, or filed for a second person on four-eyes
experiments. A refused action re-renders the page with the message next to the field and
everything the person typed kept. Stop, promote, roll back and archive ask for confirmation
on a page of their own first (no script needed, so the Content Security Policy stays strict).
"""

from __future__ import annotations

from typing import Any

import orjson
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from mabdash.accounts.roles import APPROVER, OPERATOR, VIEWER, user_has_role
from mabdash.control.services.action_params import NEEDS_CONFIRMATION, action_params_check
from mabdash.control.services.actions import Actor, action_submit
from mabdash.control.services.narrative import action_sentence
from mabdash.dashboard.selectors.counterfactual import counterfactual_panel
from mabdash.dashboard.selectors.experiment import RANGES, control_panel, experiment_dashboard
from mabdash.dashboard.selectors.history import experiment_history
from mabdash.dashboard.views.access import data_endpoint, role_required
from mabdash.errors import InvalidInput, ServiceError
from mabdash.evaluation.services.reports import report_request
from mabdash.experiments.models import Experiment
from mabdash.experiments.services.audit import actor_name
from mabdash.experiments.services.experiments import STATUS_TRANSITIONS

#: Form fields an action may carry; kept and shown again if the action is refused.
FORM_FIELDS = ("arm", "expires_in_minutes", "reason")


def _page(
    request: HttpRequest,
    experiment: Experiment,
    *,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    panel = control_panel(experiment)
    page, cards = experiment_history(experiment, request.GET.get("history"))
    typed = values or {}
    active = panel["active_weights"]
    weight_rows = [
        {
            "position": arm.position,
            "value": typed.get(f"weight_{arm.position}", active[i] if active and i < len(active) else ""),
        }
        for i, arm in enumerate(panel["arms"])
    ]
    return render(
        request,
        "experiment_detail.html",
        {
            "experiment": experiment,
            "can_act": user_has_role(request.user, OPERATOR),
            "can_approve": user_has_role(request.user, APPROVER),
            "ranges": list(RANGES),
            "config": {
                "dataUrl": f"/experiments/{experiment.slug}/data/",
                "historyUrl": f"/experiments/{experiment.slug}/history/",
                "controlVersion": experiment.control_version,
                "refreshSeconds": 5,
                "staleSeconds": 20,
            },
            "transitions": sorted(STATUS_TRANSITIONS[Experiment.Status(experiment.status)]),
            "errors": errors or {},
            "values": values or {},
            "history_page": page,
            "history_cards": cards,
            "weight_rows": weight_rows,
            "what_if": counterfactual_panel(experiment),
            **panel,
        },
        status=status,
    )


def _nth(values: list[float] | None, index: int) -> float | str:
    return values[index] if values and index < len(values) else ""


@require_GET
@role_required(VIEWER)
def experiment_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _page(request, get_object_or_404(Experiment, slug=slug))


@require_GET
@data_endpoint
def experiment_data(request: HttpRequest, slug: str) -> HttpResponse:
    experiment = Experiment.objects.filter(slug=slug).first()
    if experiment is None:
        return JsonResponse({"detail": f"no experiment {slug!r}", "errors": {"experiment": ["not found"]}}, status=404)
    range_key = request.GET.get("range", "all")
    if range_key not in RANGES:
        return JsonResponse(
            {"detail": "Invalid range.", "errors": {"range": [f"must be one of {', '.join(RANGES)}"]}},
            status=400,
        )
    # orjson: the payload holds tens of thousands of floats; the stdlib encoder is ~10x slower.
    return HttpResponse(orjson.dumps(experiment_dashboard(experiment, range_key)), content_type="application/json")


@require_GET
@role_required(VIEWER)
def experiment_history_fragment(request: HttpRequest, slug: str) -> HttpResponse:
    """The history cards alone (the page refreshes them in place)."""
    experiment = get_object_or_404(Experiment, slug=slug)
    page, cards = experiment_history(experiment, request.GET.get("history"))
    return render(
        request, "history_cards.html", {"history_page": page, "history_cards": cards, "experiment": experiment}
    )


# --------------------------------------------------------------------------- acting
def _number(text: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput({field: ["must be a number"]}) from None


def _params_from_form(experiment: Experiment, data: Any) -> dict[str, Any]:
    """The action's parameters from form text (the numbers' rules are the services')."""
    params: dict[str, Any] = {}
    if data.get("arm", "") != "":
        arm = data["arm"]
        if not arm.isdigit():
            raise InvalidInput({"arm": ["must be an arm position"]})
        params["arm"] = int(arm)
    minutes = (data.get("expires_in_minutes") or "").strip()
    if minutes:
        params["expires_in_minutes"] = _number(minutes, "expires_in_minutes")
    if data.get("action") == "weights":
        weights = []
        for arm in experiment.arms.order_by("position"):
            text = (data.get(f"weight_{arm.position}") or "").strip()
            weights.append(_number(text, "weights") if text else 0.0)
        params["weights"] = weights
    return params


def _version(data: Any) -> int | None:
    text = data.get("expected_version") or ""
    if not text.isdigit():
        return None
    return int(text)


@require_POST
@role_required(OPERATOR)
def experiment_action(request: HttpRequest, slug: str) -> HttpResponse:
    """Every control of the page: validate, confirm when the action is hard to undo, submit."""
    experiment = get_object_or_404(Experiment, slug=slug)
    data = request.POST
    action = data.get("action", "")
    values = {name: str(data.get(name, "")) for name in FORM_FIELDS}
    values.update({k: str(v) for k, v in data.items() if k.startswith("weight_")})
    try:
        params = _params_from_form(experiment, data)
        if action in NEEDS_CONFIRMATION and data.get("confirmed") != "yes":
            clean = action_params_check(experiment, action, params)
            return render(
                request,
                "experiment_confirm.html",
                {
                    "experiment": experiment,
                    "action": action,
                    "sentence": action_sentence(experiment, action, clean),
                    "fields": {k: v for k, v in data.items() if k not in ("csrfmiddlewaretoken", "confirmed")},
                    "four_eyes": experiment.approval_mode == Experiment.ApprovalMode.FOUR_EYES,
                },
            )
        outcome = action_submit(
            experiment,
            action,
            params,
            Actor.of(request.user),
            reason=data.get("reason", ""),
            expected_version=_version(data),
        )
    except ServiceError as error:
        experiment.refresh_from_db()
        return _page(request, experiment, errors=error.errors, values=values, status=error.status_code)
    if outcome.outcome == "requested":
        messages.success(
            request,
            f"Requested: {outcome.summary}. Another user with the approver role must approve it "
            f"(request #{outcome.request.pk if outcome.request else '?'}).",
        )
    else:
        messages.success(request, f"Done: {outcome.summary}.")
    return redirect("experiment-detail", slug=slug)


@require_POST
@role_required(OPERATOR)
def experiment_counterfactual(request: HttpRequest, slug: str) -> HttpResponse:
    """Ask the evaluation worker for a fresh What-if report (or show the one under way)."""
    experiment = get_object_or_404(Experiment, slug=slug)
    report = report_request(experiment, actor_name(request.user))
    messages.success(request, f"What-if report #{report.pk} is {report.status}; this page shows it when it is done.")
    return redirect(reverse("experiment-detail", kwargs={"slug": slug}) + "#what-if")
