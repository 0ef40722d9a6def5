"""Registering a model version, creating an experiment and changing its settings in the browser.

The forms turn text into values; the services apply the same rules as the API and their
refusals appear next to the fields they name. A change of settings goes the one way of every
change (``mabdash.control``): through approval on four-eyes experiments.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from mabdash.accounts.roles import OPERATOR
from mabdash.control.services.actions import Actor, action_submit
from mabdash.dashboard.forms import (
    ExperimentCreateForm,
    ExperimentSettingsForm,
    ModelVersionForm,
    apply_service_errors,
    guardrail_fields,
    guardrails_from,
    strategy_parameters,
    strategy_params_from,
)
from mabdash.dashboard.views.access import role_required
from mabdash.errors import InvalidInput, ServiceError
from mabdash.experiments.models import Experiment
from mabdash.experiments.services.experiments import experiment_create
from mabdash.experiments.services.registry import model_version_register

#: Service error fields → form fields.
FIELD_NAMES = {"policy_kind": "policy_kind", "policy_params": "policy_kind", "arms": "models", "policy": "policy_kind"}


@role_required(OPERATOR)
def model_create(request: HttpRequest) -> HttpResponse:
    form = ModelVersionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            model = model_version_register(**form.cleaned_data, actor=request.user.get_username())
        except ServiceError as error:
            if isinstance(error, InvalidInput) or error.status_code == 409:
                apply_service_errors(form, InvalidInput(error.errors))
            else:
                raise
        else:
            messages.success(request, f"Registered {model}.")
            return redirect("model-detail", model_id=model.pk)
    return render(request, "model_form.html", {"form": form}, status=400 if form.errors else 200)


def _strategy_context(data: Any, current: dict[str, Any] | None, guardrails: dict[str, Any] | None) -> dict[str, Any]:
    """The strategy and guardrail inputs, showing what was typed after a refusal."""
    strategies = strategy_parameters(current)
    guards = guardrail_fields(guardrails)
    if data:
        for strategy in strategies:
            for param in strategy["params"]:
                param["value"] = data.get(param["input"], param["value"])
        for guard in guards:
            guard["value"] = (
                (data.get(guard["input"]) in ("on", "true", "1"))
                if guard["flag"]
                else data.get(guard["input"], guard["value"])
            )
    return {"strategies": strategies, "guardrail_fields": guards}


@role_required(OPERATOR)
def experiment_new(request: HttpRequest) -> HttpResponse:
    form = ExperimentCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            experiment = experiment_create(
                slug=data["slug"],
                name=data["name"],
                description=data["description"],
                policy_kind=data["policy_kind"],
                policy_params=strategy_params_from(request.POST, data["policy_kind"]),
                policy_seed=data["policy_seed"],
                model_version_ids=[model.pk for model in data["models"]],
                reward_kind=data["reward_kind"],
                default_arm=data["default_arm"],
                reward_window_seconds=data["reward_window_seconds"],
                retention_days=data["retention_days"],
                guardrails=guardrails_from(request.POST),
                approval_mode=data["approval_mode"],
                rollback_mode=data["rollback_mode"],
                status=data["status"],
                actor=request.user.get_username(),
            )
        except ServiceError as error:
            apply_service_errors(form, InvalidInput(error.errors), FIELD_NAMES)
        else:
            messages.success(request, f"Created {experiment.slug}.")
            return redirect("experiment-detail", slug=experiment.slug)
    context = {"form": form, "creating": True, **_strategy_context(request.POST or None, None, None)}
    return render(request, "experiment_form.html", context, status=400 if form.errors else 200)


@role_required(OPERATOR)
def experiment_settings(request: HttpRequest, slug: str) -> HttpResponse:
    experiment = get_object_or_404(Experiment, slug=slug)
    initial = {
        "name": experiment.name,
        "description": experiment.description,
        "policy_kind": experiment.policy_kind,
        "policy_seed": experiment.policy_seed,
        "reward_window_seconds": experiment.reward_window_seconds,
        "retention_days": experiment.retention_days,
        "default_arm": experiment.default_position,
        "approval_mode": experiment.approval_mode,
        "rollback_mode": experiment.rollback_mode,
    }
    form = ExperimentSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            wanted = {
                "name": data["name"],
                "description": data["description"],
                "policy": {
                    "kind": data["policy_kind"],
                    "params": strategy_params_from(request.POST, data["policy_kind"]),
                    "seed": data["policy_seed"],
                },
                "reward_window_seconds": data["reward_window_seconds"],
                "retention_days": data["retention_days"],
                "default_arm": data["default_arm"],
                "guardrails": guardrails_from(request.POST),
                "approval_mode": data["approval_mode"],
                "rollback_mode": data["rollback_mode"],
            }
            outcome = action_submit(
                experiment,
                "settings",
                {"settings": wanted},
                Actor.of(request.user),
                reason=data["reason"],
                expected_version=int(request.POST["expected_version"])
                if request.POST.get("expected_version", "").isdigit()
                else None,
            )
        except ServiceError as error:
            errors = {
                ("settings" if k == "settings" else k.removeprefix("settings.")): v for k, v in error.errors.items()
            }
            apply_service_errors(form, InvalidInput(errors), FIELD_NAMES)
        else:
            if outcome.outcome == "requested":
                messages.success(request, f"Requested: {outcome.summary}. An approver must approve it.")
            else:
                messages.success(request, f"Done: {outcome.summary}.")
            return redirect("experiment-detail", slug=slug)
    current = {"kind": experiment.policy_kind, "params": experiment.policy_params}
    context = {
        "form": form,
        "experiment": experiment,
        "creating": False,
        **_strategy_context(request.POST or None, current, experiment.guardrails),
    }
    return render(request, "experiment_form.html", context, status=400 if form.errors else 200)
