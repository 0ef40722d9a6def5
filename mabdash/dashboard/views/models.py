"""The model registry pages."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from mabdash.accounts.roles import OPERATOR, VIEWER, user_has_role
from mabdash.dashboard.selectors.models import model_detail as model_detail_data
from mabdash.dashboard.views.access import role_required
from mabdash.experiments.models import ModelVersion


@require_GET
@role_required(VIEWER)
def model_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(ModelVersion.objects.order_by("name", "-created_at"), 50).get_page(request.GET.get("page"))
    return render(request, "model_list.html", {"page": page, "can_act": user_has_role(request.user, OPERATOR)})


@require_GET
@role_required(VIEWER)
def model_detail(request: HttpRequest, model_id: int) -> HttpResponse:
    model = get_object_or_404(ModelVersion, pk=model_id)
    detail = model_detail_data(model)
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
