"""Dashboard pages and their JSON endpoints: thin — check the role, call a selector or a
service, render. Every page needs a login; viewers read, operators act."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from functools import wraps

import orjson
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from mabdash.accounts.roles import APPROVER, OPERATOR, VIEWER, user_has_role
from mabdash.control.models import ActionRequest
from mabdash.control.services import actions, approvals
from mabdash.dashboard import selectors
from mabdash.errors import InvalidInput, ServiceError
from mabdash.experiments.models import Experiment, ModelVersion
from mabdash.experiments.services import experiments as experiment_services


def role_required(role: str):
    """Page needs a login (redirect) and ``role`` (403)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not user_has_role(request.user, role):
                return HttpResponseForbidden(f"This page needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def data_endpoint(view):
    """JSON endpoint: anonymous → 401 JSON (no redirect), users without a role → 403 JSON."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"detail": "Log in to see dashboard data.", "errors": {}}, status=401)
        if not user_has_role(request.user, VIEWER):
            return JsonResponse({"detail": "Your account has no dashboard role.", "errors": {}}, status=403)
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@role_required(VIEWER)
def overview(request: HttpRequest) -> HttpResponse:
    rows = selectors.overview_rows(Experiment.objects.order_by("slug"))
    sparklines = {row["experiment"].slug: row["sparkline"] for row in rows}
    return render(request, "overview.html", {"rows": rows, "sparklines": sparklines})


@require_GET
@role_required(VIEWER)
def experiment_detail(request: HttpRequest, slug: str) -> HttpResponse:
    experiment = get_object_or_404(Experiment, slug=slug)
    return render(
        request,
        "experiment_detail.html",
        {
            "experiment": experiment,
            "can_act": user_has_role(request.user, OPERATOR),
            "ranges": list(selectors.RANGES),
            "config": {"dataUrl": f"/experiments/{slug}/data/", "refreshSeconds": 5, "staleSeconds": 20},
            "transitions": sorted(experiment_services.STATUS_TRANSITIONS[Experiment.Status(experiment.status)]),
            "can_approve": user_has_role(request.user, APPROVER),
            **selectors.control_panel(experiment),
        },
    )


@require_GET
@data_endpoint
def experiment_data(request: HttpRequest, slug: str) -> JsonResponse:
    experiment = Experiment.objects.filter(slug=slug).first()
    if experiment is None:
        return JsonResponse({"detail": f"no experiment {slug!r}", "errors": {"experiment": ["not found"]}}, status=404)
    range_key = request.GET.get("range", "all")
    if range_key not in selectors.RANGES:
        return JsonResponse(
            {"detail": "Invalid range.", "errors": {"range": [f"must be one of {', '.join(selectors.RANGES)}"]}},
            status=400,
        )
    # orjson: the payload holds tens of thousands of floats; the stdlib encoder is ~10x slower.
    return HttpResponse(
        orjson.dumps(selectors.experiment_dashboard(experiment, range_key)), content_type="application/json"
    )


def _float_or_none(value: str | None, field: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput({field: ["must be a number"]}) from None


@require_POST
@role_required(OPERATOR)
def experiment_action(request: HttpRequest, slug: str) -> HttpResponse:
    """Every operator button of the detail page: one service call, a message, back to the page."""
    experiment = get_object_or_404(Experiment, slug=slug)
    action = request.POST.get("action", "")
    try:
        params: dict = {}
        if request.POST.get("arm", "") != "":
            params["arm"] = int(request.POST["arm"])
        minutes = _float_or_none(request.POST.get("expires_in_minutes"), "expires_in_minutes")
        if minutes is not None:
            params["expires_in_minutes"] = minutes
        if action == "weights":
            params["weights"] = [
                _float_or_none(request.POST.get(f"weight_{arm.position}"), f"weight_{arm.position}") or 0.0
                for arm in experiment.arms.order_by("position")
            ]
        version = request.POST.get("expected_version")
        outcome = actions.action_submit(
            experiment,
            action,
            params,
            actions.Actor.of(request.user),
            reason=request.POST.get("reason", ""),
            expected_version=int(version) if version else None,
        )
        if outcome.outcome == "requested":
            messages.success(request, f"Requested {action}: another user with the approver role must approve it.")
        else:
            messages.success(request, f"Done: {action}.")
    except (ValueError, TypeError):
        messages.error(request, "arm: must be an arm position")
    except ServiceError as error:
        messages.error(request, error.message)
    return redirect("experiment-detail", slug=slug)


@require_POST
@role_required(VIEWER)
def request_decision(request: HttpRequest, request_id: int, decision: str) -> HttpResponse:
    """Approve or reject (veto) a pending request from the detail page."""
    action_request = get_object_or_404(ActionRequest.objects.select_related("experiment"), pk=request_id)
    try:
        approvals.request_decide(
            request_id, decision == "approve", actions.Actor.of(request.user), reason=request.POST.get("reason", "")
        )
        messages.success(request, f"Request #{request_id} {'approved' if decision == 'approve' else 'rejected'}.")
    except ServiceError as error:
        messages.error(request, error.message)
    return redirect("experiment-detail", slug=action_request.experiment.slug)


@require_GET
@role_required(VIEWER)
def model_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(ModelVersion.objects.order_by("name", "-created_at"), 50).get_page(request.GET.get("page"))
    return render(request, "model_list.html", {"page": page})


@require_GET
@role_required(VIEWER)
def model_detail(request: HttpRequest, model_id: int) -> HttpResponse:
    model = get_object_or_404(ModelVersion, pk=model_id)
    detail = selectors.model_detail(model)
    return render(
        request,
        "model_detail.html",
        {
            "model": model,
            "arms": detail["arms"],
            "figure": detail["figure"],
            "metadata": json.dumps(model.metadata, indent=2),
        },
    )


def _parse_time(value: str, field: str, errors: dict[str, str]) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value) or (parse_datetime(value + "T00:00:00") if len(value) == 10 else None)
    if parsed is None:
        errors[field] = "use a date (2026-11-28) or date-time (2026-11-28T09:30)"
    elif parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@role_required(VIEWER)
def audit_log(request: HttpRequest) -> HttpResponse:
    errors: dict[str, str] = {}
    filters = {key: request.GET.get(key, "").strip() for key in ("experiment", "actor", "kind", "since", "until")}
    since = _parse_time(filters["since"], "since", errors)
    until = _parse_time(filters["until"], "until", errors)
    entries = selectors.audit_entries(
        experiment=filters["experiment"], actor=filters["actor"], kind=filters["kind"], since=since, until=until
    )
    if request.GET.get("format") == "csv" and not errors:
        writer = csv.writer(_Echo())
        header = ["time", "experiment", "actor", "kind", "reason", "before", "after", "evidence"]
        rows = (
            [
                e.created_at.isoformat(),
                e.experiment.slug if e.experiment else "",
                e.actor,
                e.kind,
                e.reason,
                json.dumps(e.before),
                json.dumps(e.after),
                json.dumps(e.evidence),
            ]
            for e in entries.iterator()
        )
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in [header, *rows]), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="mabdash-audit.csv"'
        return response
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return render(
        request,
        "audit_log.html",
        {
            "page": page,
            "filters": filters,
            "errors": errors,
            "choices": selectors.audit_filter_choices(),
            "query": query,
        },
        status=400 if errors else 200,
    )
