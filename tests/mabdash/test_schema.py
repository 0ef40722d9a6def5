"""The OpenAPI schema validates, and every operation in it is exercised and conforms."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from django.core.management import call_command

from mabdash.control.services.learning_cycle import learning_cycle_run
from mabdash.experiments.services.registry import model_version_register
from tests.openapi import OpenApi

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(tmp_path) -> OpenApi:
    path = tmp_path / "schema.yml"
    # --validate checks it against the OpenAPI 3 meta-schema; --fail-on-warn catches gaps.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return OpenApi(yaml.safe_load(path.read_text()))


def test_schema_is_served_and_describes_api_key_auth(api, admin_key):
    response = api(admin_key).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = response.json()
    assert document["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Api-Key <key>`; create keys with `manage.py create_api_key`. Never put a key in a URL.",
    }


def test_docs_page_needs_no_cdn(api, admin_key):
    page = api(admin_key).get("/api/docs/").content.decode()
    assert "swagger-ui" in page and "cdn" not in page.lower() and "//unpkg" not in page


# One valid call per operation: (method, path, body, expected status). A new endpoint
# without an entry here fails test_every_operation_is_exercised.
Call = tuple[str, str, Any, int]


def calls(ctx: dict[str, Any]) -> dict[str, Call]:
    return {
        "models_list": ("GET", "/api/v1/models/", None, 200),
        "models_register": ("POST", "/api/v1/models/", {"name": "new", "version": "1", "artifact_uri": "s3://n"}, 201),
        "models_detail": ("GET", f"/api/v1/models/{ctx['model_id']}/", None, 200),
        "experiments_list": ("GET", "/api/v1/experiments/", None, 200),
        "experiments_create": (
            "POST",
            "/api/v1/experiments/",
            {"slug": "fresh", "name": "Fresh", "policy": {"kind": "ucb1"}, "arms": [ctx["model_id"]]},
            201,
        ),
        "experiments_detail": ("GET", "/api/v1/experiments/churn/", None, 200),
        "experiments_set_status": ("POST", "/api/v1/experiments/churn/status/", {"status": "paused"}, 200),
        "experiments_add_arm": ("POST", "/api/v1/experiments/churn/arms/", {"model_version": ctx["spare_id"]}, 201),
        "experiments_state": ("GET", "/api/v1/experiments/churn/state/", None, 200),
        "decide": ("POST", "/api/v1/experiments/churn/decide/", None, 200),
        "rewards_record": (
            "POST",
            "/api/v1/rewards/",
            {"rewards": [{"experiment": "churn", "arm": 0, "value": 1}]},
            200,
        ),
        "experiments_act": ("POST", "/api/v1/experiments/churn/actions/", {"action": "pin", "arm": 1}, 200),
        "experiments_requests": ("GET", "/api/v1/experiments/churn/requests/", None, 200),
        "requests_approve": ("POST", f"/api/v1/requests/{ctx['request_ids'][0]}/approve/", {}, 200),
        "requests_reject": ("POST", f"/api/v1/requests/{ctx['request_ids'][1]}/reject/", {}, 200),
        "requests_withdraw": ("POST", f"/api/v1/requests/{ctx['request_ids'][2]}/withdraw/", {}, 200),
        "experiments_change_settings": (
            "POST",
            "/api/v1/experiments/churn/settings/",
            {"name": "Churn scoring v2", "policy": {"kind": "epsilon_greedy", "params": {"epsilon": 0.2}}},
            200,
        ),
        "experiments_snapshot": ("GET", "/api/v1/experiments/churn/snapshot/?decisions=2", None, 200),
        "experiments_report_decisions": ("POST", "/api/v1/experiments/churn/decisions/", {"decisions": ["x.y"]}, 200),
        "experiments_counterfactual_request": ("POST", "/api/v1/experiments/churn/counterfactual/", {}, 202),
        "experiments_counterfactual": ("GET", "/api/v1/experiments/churn/counterfactual/", None, 200),
        "webhooks_create": ("POST", "/api/v1/experiments/churn/webhooks/", {"url": "https://h.example.com/x"}, 201),
        "webhooks_list": ("GET", "/api/v1/experiments/churn/webhooks/", None, 200),
        "webhooks_deliveries": ("GET", f"/api/v1/webhooks/{ctx['webhook_id']}/deliveries/", None, 200),
        "webhooks_delete": ("DELETE", f"/api/v1/webhooks/{ctx['webhook_id']}/", None, 204),
    }


def test_every_operation_is_exercised_and_matches_the_schema(schema, api, admin_key, experiment, model_versions):
    spare = model_version_register(name="spare", version="1", artifact_uri="s3://s", actor="t")
    learning_cycle_run(experiment.pk)
    from mabdash.accounts.services import user_create
    from mabdash.control.models import ActionRequest
    from mabdash.control.services.actions import SYSTEM, request_create
    from mabdash.control.services.webhooks import webhook_create

    requests = [
        request_create(experiment, "pause", {}, ActionRequest.Mode.APPROVAL, requested_by=SYSTEM) for _ in range(2)
    ]
    from mabdash.accounts.authentication import principal_for_key
    from mabdash.control.services.actions import Actor

    admin = Actor.of(principal_for_key(admin_key))  # the admin key's own request, which it may withdraw
    requests.append(request_create(experiment, "pin", {"arm": 0}, ActionRequest.Mode.FOUR_EYES, requested_by=admin))
    webhook = webhook_create(experiment, url="https://h.example.com/y", events=[], secret=None, actor="t")
    approver = user_create(username="ana", password="pw-ana-123456", role="approver")
    table = calls(
        {
            "model_id": model_versions[0].pk,
            "spare_id": spare.pk,
            "request_ids": [r.pk for r in requests],
            "webhook_id": webhook.pk,
        }
    )
    operations = {operation_id for operation_id, _, _ in schema.operations()}
    assert operations == set(table), "every operation in the schema needs an entry in calls()"
    from mabdash.accounts.services import api_key_create

    client = api(admin_key)
    as_approver = api(api_key_create(name="ana-cli", user=approver).raw_key)
    for operation_id, (method, path, body, status) in table.items():
        caller = as_approver if operation_id in ("requests_approve", "requests_reject") else client
        response = caller.generic(
            method, path, "" if body is None else json.dumps(body), content_type="application/json"
        )
        assert response.status_code == status, (operation_id, response.content)
        payload = response.json() if response.content else None
        assert schema.validate(method, path, status, payload) == operation_id


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/v1/rewards/", {"value": 1}, 400),
        ("POST", "/api/v1/rewards/", {"experiment": "churn", "arm": 0, "value": 1, "event_id": "x"}, 201),
        ("POST", "/api/v1/experiments/", {"slug": "?"}, 400),
        ("GET", "/api/v1/experiments/none/", None, 404),
    ],
)
def test_error_and_single_reward_responses_match_the_schema(
    schema, api, admin_key, experiment, method, path, body, status
):

    response = api(admin_key).generic(
        method, path, "" if body is None else json.dumps(body), content_type="application/json"
    )
    assert response.status_code == status
    schema.validate(method, path, status, response.json())


def test_unauthenticated_responses_match_the_schema(schema, api, experiment):
    response = api().post("/api/v1/experiments/churn/decide/")
    schema.validate("POST", "/api/v1/experiments/churn/decide/", 401, response.json())
