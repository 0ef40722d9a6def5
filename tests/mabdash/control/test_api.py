"""The control API: actions, requests and approvals, webhooks — through HTTP."""

from __future__ import annotations

import pytest

from mabdash.accounts.services import api_key_create
from mabdash.control.models import ActionRequest, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def personal(api):
    """An API client acting as ``user`` (a personal key)."""

    def client(user):
        return api(api_key_create(name=f"{user.username}-cli", user=user).raw_key)

    return client


def test_an_operator_pins_through_the_api_and_decide_follows(api, personal, operator, client_key, experiment):
    response = personal(operator).post(
        "/api/v1/experiments/churn/actions/",
        {
            "action": "pin",
            "arm": 1,
            "expires_in_minutes": 15,
            "reason": "canary",
            "expected_version": experiment.serving_version,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["outcome"], body["request"], body["state"]["override"]["position"]) == ("applied", None, 1)
    decision = api(client_key).post("/api/v1/experiments/churn/decide/").json()
    assert (decision["arm"], decision["propensity"], decision["served_by"]) == (1, 1.0, "pin")
    detail = api(client_key).get("/api/v1/experiments/churn/").json()
    assert detail["override"]["kind"] == "pin" and detail["serving_version"] == experiment.serving_version + 1


def test_action_errors_name_the_field(api, personal, operator, experiment):
    client = personal(operator)
    bad = client.post("/api/v1/experiments/churn/actions/", {"action": "pin", "arm": 9}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"] == {"arm": ["must be an arm position in [0, 3)"]}
    stale = client.post("/api/v1/experiments/churn/actions/", {"action": "pause", "expected_version": 0}, format="json")
    assert stale.status_code == 409 and list(stale.json()["errors"]) == ["expected_version"]
    unknown = client.post("/api/v1/experiments/churn/actions/", {"action": "explode"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["errors"] == {"action": ['"explode" is not a valid choice.']}


def test_viewers_and_client_keys_are_refused(api, personal, viewer, client_key, experiment):
    for client in (personal(viewer), api(client_key)):
        response = client.post("/api/v1/experiments/churn/actions/", {"action": "pause"}, format="json")
        assert response.status_code == 403
        assert response.json()["errors"] == {"action": ["this needs the operator role (or an admin API key)"]}


def test_four_eyes_over_the_api(api, personal, operator, approver, make_experiment):
    make_experiment("guarded", approval_mode="four_eyes")
    filed = personal(operator).post(
        "/api/v1/experiments/guarded/actions/", {"action": "stop", "reason": "done"}, format="json"
    )
    assert filed.status_code == 202
    request_id = filed.json()["request"]["id"]
    listed = personal(approver).get("/api/v1/experiments/guarded/requests/?status=pending").json()
    assert [r["id"] for r in listed] == [request_id]
    own = personal(operator).post(f"/api/v1/requests/{request_id}/approve/", {}, format="json")
    assert own.status_code == 403
    approved = personal(approver).post(f"/api/v1/requests/{request_id}/approve/", {"reason": "ok"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "applied"
    again = personal(approver).post(f"/api/v1/requests/{request_id}/reject/", {}, format="json")
    assert again.status_code == 409 and again.json()["errors"] == {
        "request": [f"request {request_id} is already applied by ana"]
    }
    assert personal(approver).post("/api/v1/requests/999/approve/", {}, format="json").status_code == 404
    bad_filter = personal(approver).get("/api/v1/experiments/guarded/requests/?status=maybe")
    assert bad_filter.status_code == 400


def test_webhooks_over_the_api(api, admin_key, operator, experiment):
    client = api(admin_key)
    created = client.post(
        "/api/v1/experiments/churn/webhooks/",
        {"url": "https://hooks.example.com/mab", "events": ["rollback.applied"]},
        format="json",
    )
    assert created.status_code == 201
    hook = created.json()
    assert len(hook["secret"]) >= 32 and hook["events"] == ["rollback.applied"]
    assert [h["id"] for h in client.get("/api/v1/experiments/churn/webhooks/").json()] == [hook["id"]]
    assert "secret" not in client.get("/api/v1/experiments/churn/webhooks/").json()[0]
    client.post(
        "/api/v1/experiments/churn/actions/", {"action": "rollback_arm", "arm": 1, "reason": "x"}, format="json"
    )
    deliveries = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries/").json()
    assert [(d["event"], d["status"]) for d in deliveries] == [("rollback.applied", "pending")]
    assert WebhookDelivery.objects.count() == 1
    assert client.delete(f"/api/v1/webhooks/{hook['id']}/").status_code == 204
    assert client.delete(f"/api/v1/webhooks/{hook['id']}/").status_code == 404
    bad = client.post("/api/v1/experiments/churn/webhooks/", {"url": "not a url"}, format="json")
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["url"]


def test_requests_list_is_readable_by_viewers(api, personal, viewer, operator, make_experiment):
    make_experiment("guarded", approval_mode="four_eyes")
    personal(operator).post("/api/v1/experiments/guarded/actions/", {"action": "pause"}, format="json")
    listed = personal(viewer).get("/api/v1/experiments/guarded/requests/")
    assert listed.status_code == 200 and listed.json()[0]["status"] == ActionRequest.Status.PENDING
