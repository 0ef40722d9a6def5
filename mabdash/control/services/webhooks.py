"""Outgoing webhooks: subscriptions, and JSON events signed with HMAC-SHA256, delivered by
Celery with retries.

Each event becomes one ``WebhookDelivery`` per subscribed webhook, created in the caller's
transaction and sent after it commits. A delivery is a POST with the headers

- ``X-Mabdash-Event``: the event name; ``X-Mabdash-Delivery``: the delivery id;
- ``X-Mabdash-Timestamp``: Unix seconds; ``X-Mabdash-Signature``: ``sha256=`` followed by the
  hex HMAC-SHA256, keyed with the webhook's secret, of ``"{timestamp}.{body}"``.

Receivers should recompute the signature and reject old timestamps. Any 2xx answer counts as
delivered; anything else (or no answer within 5 s) is retried with exponential backoff —
``MABDASH_WEBHOOK_BACKOFF_SECONDS`` × 2^(attempt − 1) — up to ``MAX_ATTEMPTS`` attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mabdash.control.models import Webhook, WebhookDelivery
from mabdash.errors import InvalidInput
from mabdash.experiments.models import Experiment
from mabdash.experiments.services.audit import audit_record
from mabdash.queue import background, send_task

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
TIMEOUT_SECONDS = 5
# A claimed attempt that never reports back (worker killed) is retried after this.
LEASE_SECONDS = 60
#: The task that makes one delivery attempt (``mabdash.control.tasks``), published by name.
DELIVERY_TASK = "mabdash.control.tasks.webhook_deliver_task"


def webhook_create(experiment: Experiment, *, url: str, events: list[str], secret: str | None, actor: str) -> Webhook:
    """Subscribe ``url`` to the experiment's events (all when ``events`` is empty)."""
    if not url.startswith(("http://", "https://")):
        raise InvalidInput({"url": ["must be an http:// or https:// URL"]})
    unknown = sorted(set(events) - set(Webhook.EVENTS))
    if unknown:
        raise InvalidInput({"events": [f"unknown event {unknown[0]!r}; expected {', '.join(Webhook.EVENTS)}"]})
    webhook = Webhook.objects.create(
        experiment=experiment, url=url, events=events, secret=secret or secrets.token_urlsafe(32), created_by=actor
    )
    audit_record("webhook.created", actor, experiment=experiment, after={"url": url, "events": events})
    return webhook


def webhook_delete(webhook: Webhook, *, actor: str) -> None:
    """Unsubscribe (its delivery log goes with it)."""
    audit_record(
        "webhook.deleted", actor, experiment=webhook.experiment, before={"url": webhook.url, "events": webhook.events}
    )
    webhook.delete()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Mabdash-Signature`` value for a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_emit(experiment: Experiment, event: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Queue ``event`` for every webhook of the experiment that wants it (sent on commit)."""
    payload = {
        "event": event,
        "experiment": experiment.slug,
        "occurred_at": timezone.now().isoformat(),
        "data": data,
    }
    deliveries = [
        WebhookDelivery.objects.create(webhook=hook, event=event, payload=payload, next_attempt_at=timezone.now())
        for hook in Webhook.objects.filter(experiment=experiment, active=True)
        if hook.wants(event)
    ]
    for delivery in deliveries:
        transaction.on_commit(partial(_enqueue, delivery.pk))
    return deliveries


def _enqueue(delivery_id: int, countdown: float = 0) -> None:
    """Publish an attempt in the background; if the broker is down, beat's sweep sends it later."""
    background.submit(("webhook", delivery_id), partial(send_task, DELIVERY_TASK, [delivery_id], countdown))


def webhook_deliver(delivery_id: int) -> str:
    """Make one delivery attempt if it is due; schedule the next on failure. Idempotent.

    The attempt is claimed with a short lease (an atomic update), and the HTTP request runs
    outside any transaction, so a slow receiver never holds a database lock.
    """
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS), attempts=F("attempts") + 1)
    if not claimed:
        return "not due"
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        delivery.webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "mabdash-webhooks/1",
            "X-Mabdash-Event": delivery.event,
            "X-Mabdash-Delivery": str(delivery.pk),
            "X-Mabdash-Timestamp": timestamp,
            "X-Mabdash-Signature": signature(delivery.webhook.secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            delivery.last_status_code = response.status
            delivery.last_error = ""
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
    except urllib.error.HTTPError as error:
        delivery.last_status_code = error.code
        delivery.last_error = f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        delivery.last_status_code = None
        delivery.last_error = str(getattr(error, "reason", error))[:500]
    if delivery.status != WebhookDelivery.Status.DELIVERED:
        if delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
        else:
            backoff = settings.MABDASH["WEBHOOK_BACKOFF_SECONDS"] * 2 ** (delivery.attempts - 1)
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=backoff)
            _enqueue(delivery.pk, countdown=backoff)
    delivery.save(update_fields=["status", "last_status_code", "last_error", "delivered_at", "next_attempt_at"])
    return delivery.status


def webhooks_requeue_due() -> int:
    """Beat: re-enqueue pending deliveries that are due (their message may have been lost)."""
    due = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now() - timedelta(seconds=5)
        ).values_list("pk", flat=True)[:500]
    )
    for delivery_id in due:
        _enqueue(delivery_id)
    return len(due)
