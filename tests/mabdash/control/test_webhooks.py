"""Webhooks: signed JSON payloads to a real local receiver; failures are retried with backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from mabdash.control.models import ActionRequest, WebhookDelivery
from mabdash.control.services import webhooks
from mabdash.control.services.actions import Actor, action_submit
from mabdash.control.services.approvals import request_decide
from mabdash.control.services.webhooks import webhook_create
from tests.receiver import Receiver

pytestmark = pytest.mark.django_db
SECRET = "s3cret-for-the-receiver-0123456789"


@pytest.fixture
def receiver():
    server = Receiver([])
    yield server
    server.close()


def test_an_applied_rollback_is_posted_signed(experiment, operator, receiver):
    webhook_create(experiment, url=receiver.url, events=[], secret=SECRET, actor="t")
    action_submit(experiment, "rollback_arm", {"arm": 1}, Actor.of(operator), reason="bad calibration")
    (delivery,) = WebhookDelivery.objects.all()
    assert webhooks.webhook_deliver(delivery.pk) == "delivered"
    (request,) = receiver.requests
    headers, body = request["headers"], request["body"]
    expected = hmac.new(
        SECRET.encode(), f"{headers['X-Mabdash-Timestamp']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Mabdash-Signature"] == f"sha256={expected}"
    assert (headers["X-Mabdash-Event"], headers["X-Mabdash-Delivery"]) == ("rollback.applied", str(delivery.pk))
    payload = json.loads(body)
    assert (payload["event"], payload["experiment"]) == ("rollback.applied", "churn")
    assert payload["data"] == {
        "arm": 1,
        "by": "olivia",
        "reason": "bad calibration",
        "summary": "Rolled back churn:2 (arm #1)",
        "evidence": {},
    }
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert webhooks.webhook_deliver(delivery.pk) == "not due"  # a redelivered task sends nothing twice


def test_a_failing_receiver_is_retried_with_exponential_backoff(experiment, operator, settings):
    settings.MABDASH = {**settings.MABDASH, "WEBHOOK_BACKOFF_SECONDS": 10}
    failing = Receiver([500, 503])
    try:
        webhook_create(experiment, url=failing.url, events=["rollback.applied"], secret=SECRET, actor="t")
        action_submit(experiment, "rollback_arm", {"arm": 2}, Actor.of(operator), reason="x")
        delivery = WebhookDelivery.objects.get()
        start = timezone.now()
        with time_machine.travel(start, tick=False):
            assert webhooks.webhook_deliver(delivery.pk) == "pending"
            assert webhooks.webhook_deliver(delivery.pk) == "not due"
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 500, "HTTP 500")
        assert delivery.next_attempt_at == start + timedelta(seconds=10)
        with time_machine.travel(start + timedelta(seconds=11), tick=False):
            assert webhooks.webhook_deliver(delivery.pk) == "pending"
        delivery.refresh_from_db()
        assert delivery.next_attempt_at == start + timedelta(seconds=11 + 20)  # doubled
        with time_machine.travel(start + timedelta(seconds=40), tick=False):
            assert webhooks.webhook_deliver(delivery.pk) == "delivered"
        assert len(failing.requests) == 3
    finally:
        failing.close()


def test_an_unreachable_receiver_fails_after_the_last_attempt(experiment, operator, settings):
    settings.MABDASH = {**settings.MABDASH, "WEBHOOK_BACKOFF_SECONDS": 0}
    webhook_create(experiment, url="http://127.0.0.1:9/nothing-listens", events=[], secret=SECRET, actor="t")
    action_submit(experiment, "pin", {"arm": 0}, Actor.of(operator))  # pins emit nothing
    assert not WebhookDelivery.objects.exists()
    action_submit(experiment, "rollback_arm", {"arm": 0}, Actor.of(operator), reason="x")
    delivery = WebhookDelivery.objects.get()
    for _ in range(webhooks.MAX_ATTEMPTS):
        webhooks.webhook_deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 6, None)
    assert delivery.last_error


def test_approval_events_reach_subscribers(make_experiment, operator, approver, receiver):
    experiment = make_experiment("hooked", approval_mode="four_eyes")
    webhook_create(
        experiment, url=receiver.url, events=["approval.requested", "approval.decided"], secret=SECRET, actor="t"
    )
    request = action_submit(experiment, "stop", {}, Actor.of(operator)).request
    request_decide(request.pk, False, Actor.of(approver), reason="not now")
    for delivery in WebhookDelivery.objects.order_by("id"):
        webhooks.webhook_deliver(delivery.pk)
    events = [json.loads(r["body"]) for r in receiver.requests]
    assert [e["event"] for e in events] == ["approval.requested", "approval.decided"]
    assert events[1]["data"]["status"] == ActionRequest.Status.REJECTED and events[1]["data"]["decided_by"] == "ana"


def test_webhook_urls_and_events_are_checked(experiment):
    from mabdash.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        webhook_create(experiment, url="ftp://x", events=[], secret=None, actor="t")
    assert caught.value.errors == {"url": ["must be an http:// or https:// URL"]}
    with pytest.raises(InvalidInput) as caught:
        webhook_create(experiment, url="https://x", events=["everything"], secret=None, actor="t")
    assert list(caught.value.errors) == ["events"]
    assert len(webhook_create(experiment, url="https://x", events=[], secret=None, actor="t").secret) >= 32
