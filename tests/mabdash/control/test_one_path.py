"""Every change a person makes goes one way: on a four-eyes experiment, every mutating URL of
the API and the dashboard files a pending request and changes nothing.

Every URL of the project is classified below; a new URL that is not fails the first test, so
nothing can write around the approval path unnoticed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import get_resolver

from mabdash.control.models import ActionRequest
from mabdash.experiments.models import Arm, Experiment, Override
from mabdash.experiments.services.registry import model_version_register

pytestmark = pytest.mark.django_db

READ_ONLY = {
    "api-models": "GET lists models; POST registers one (see EXEMPT)",
    "api-model-detail": "",
    "api-experiments": "GET lists; POST creates (see EXEMPT)",
    "api-experiment-detail": "",
    "api-experiment-state": "",
    "api-experiment-snapshot": "",
    "api-experiment-requests": "",
    "api-webhook-deliveries": "",
    "api-schema": "",
    "api-docs": "",
    "livez": "",
    "readyz": "",
    "healthz": "",
    "metrics": "",
    "overview": "",
    "experiment-detail": "",
    "experiment-data": "",
    "experiment-history": "",
    "model-list": "",
    "model-detail": "",
    "audit-log": "",
}
#: Mutating URLs outside the approval path, and why.
EXEMPT = {
    "api-decide": "serving (the data plane), not a change of the experiment",
    "api-rewards": "the reward ledger (the data plane)",
    "api-experiment-decisions": "the decision ledger: decisions a client served (the data plane)",
    "api-models": "registering a model version changes no experiment",
    "api-experiments": "creating an experiment: there is nothing to approve it against yet",
    "model-new": "registering a model version changes no experiment",
    "experiment-new": "creating an experiment",
    "api-request-approve": "the approval itself",
    "api-request-reject": "the approval itself",
    "api-request-withdraw": "taking back one's own request",
    "request-decision": "the approval itself",
    "api-experiment-webhooks": "who is notified, not what is served (audited)",
    "api-webhook": "who is notified, not what is served (audited)",
    "api-experiment-counterfactual": "asks for a counterfactual report: an estimate, nothing served changes",
    "experiment-counterfactual": "asks for a counterfactual report: an estimate, nothing served changes",
    "login": "",
    "logout": "",
}


def url_names() -> set[str]:
    def walk(patterns: Any) -> Any:
        for pattern in patterns:
            if str(pattern.pattern).startswith("admin/"):
                continue  # Django's admin: API keys and users; experiments are read-only there
            if hasattr(pattern, "url_patterns"):
                yield from walk(pattern.url_patterns)
            elif pattern.name:
                yield pattern.name

    return set(walk(get_resolver().url_patterns))


def test_every_url_is_classified():
    classified = set(READ_ONLY) | set(EXEMPT) | set(through_approval({"model_id": 1, "arm_model_id": 2}))
    assert url_names() == classified


def through_approval(ctx: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Mutating URL name → the calls that must become requests: (kind, path, body)."""
    api = "/api/v1/experiments/careful"
    return {
        "api-experiment-actions": [
            ("api", f"{api}/actions/", {"action": "pin", "arm": 1}),
            ("api", f"{api}/actions/", {"action": "weights", "weights": [1, 3, 0]}),
            ("api", f"{api}/actions/", {"action": "pause_arm", "arm": 2}),
            ("api", f"{api}/actions/", {"action": "rollback_arm", "arm": 2, "reason": "bad"}),
            ("api", f"{api}/actions/", {"action": "promote", "arm": 1}),
            ("api", f"{api}/actions/", {"action": "pause"}),
            ("api", f"{api}/actions/", {"action": "stop"}),
            ("api", f"{api}/actions/", {"action": "archive"}),
            ("api", f"{api}/actions/", {"action": "add_arm", "model_version": ctx["arm_model_id"]}),
            ("api", f"{api}/actions/", {"action": "settings", "settings": {"approval_mode": "direct"}}),
        ],
        "api-experiment-status": [
            ("api", f"{api}/status/", {"status": "paused"}),
            ("api", f"{api}/status/", {"status": "stopped"}),
        ],
        "api-experiment-arms": [("api", f"{api}/arms/", {"model_version": ctx["arm_model_id"]})],
        "api-experiment-settings": [
            ("api", f"{api}/settings/", {"approval_mode": "direct"}),
            ("api", f"{api}/settings/", {"policy": {"kind": "epsilon_greedy", "params": {"epsilon": 0.3}}}),
        ],
        "experiment-action": [
            ("page", "/experiments/careful/actions/", {"action": "pin", "arm": "1"}),
            ("page", "/experiments/careful/actions/", {"action": "weights", "weight_0": "1", "weight_1": "3"}),
            ("page", "/experiments/careful/actions/", {"action": "pause"}),
            ("page", "/experiments/careful/actions/", {"action": "stop", "confirmed": "yes"}),
            ("page", "/experiments/careful/actions/", {"action": "promote", "arm": "1", "confirmed": "yes"}),
            (
                "page",
                "/experiments/careful/actions/",
                {"action": "rollback_arm", "arm": "2", "reason": "x", "confirmed": "yes"},
            ),
            ("page", "/experiments/careful/actions/", {"action": "archive", "confirmed": "yes"}),
        ],
        "experiment-settings": [
            (
                "page",
                "/experiments/careful/settings/",
                {
                    "name": "Careful",
                    "policy_kind": "thompson",
                    "policy_seed": "0",
                    "reward_window_seconds": "86400",
                    "default_arm": "0",
                    "approval_mode": "direct",
                    "rollback_mode": "auto",
                    "guard-enabled": "on",
                    "guard-floor.enabled": "on",
                    "guard-relative.enabled": "on",
                    "guard-change.enabled": "on",
                    "guard-shortfall.enabled": "on",
                },
            )
        ],
    }


def snapshot(experiment: Experiment) -> dict[str, Any]:
    experiment.refresh_from_db()
    return {
        "fields": {
            field: getattr(experiment, field)
            for field in (
                "name",
                "status",
                "policy_kind",
                "policy_params",
                "approval_mode",
                "default_position",
                "archived_at",
                "control_version",
                "serving_version",
            )
        },
        "arms": list(
            Arm.objects.filter(experiment=experiment).order_by("position").values_list("status", "model_version_id")
        ),
        "overrides": Override.objects.filter(experiment=experiment).count(),
    }


def test_on_a_four_eyes_experiment_every_mutating_url_files_a_request_and_changes_nothing(
    make_experiment, operator, admin_key
):
    experiment = make_experiment("careful", approval_mode="four_eyes")
    extra = model_version_register(name="spare", version="1", artifact_uri="s3://spare", actor="t")
    calls = through_approval({"model_id": 0, "arm_model_id": extra.pk})
    api = Client(HTTP_AUTHORIZATION=f"Api-Key {admin_key}")
    page = Client()
    page.force_login(operator)
    before = snapshot(experiment)
    expected_requests = 0
    for name, variants in calls.items():
        for kind, path, body in variants:
            if kind == "api":
                response = api.post(path, json.dumps(body), content_type="application/json")
                assert response.status_code == 202, (name, body, response.content)
                assert response.json()["outcome"] == "requested"
            else:
                response = page.post(path, body, follow=True)
                assert response.status_code == 200, (name, body)
                (message,) = [str(m) for m in response.context["messages"]]
                assert message.startswith("Requested: "), (name, body, message)
            expected_requests += 1
            assert snapshot(experiment) == before, (name, body)
    pending = ActionRequest.objects.filter(experiment=experiment, status=ActionRequest.Status.PENDING)
    assert pending.count() == expected_requests
    assert {r.mode for r in pending} == {"four_eyes"}
