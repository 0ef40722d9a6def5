"""Writes for webhook subscriptions."""

from __future__ import annotations

import secrets

from mabdash.control.models import Webhook
from mabdash.errors import InvalidInput
from mabdash.experiments.models import Experiment
from mabdash.experiments.services import audit


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
    audit("webhook.created", actor, experiment=experiment, after={"url": url, "events": events})
    return webhook


def webhook_delete(webhook: Webhook, *, actor: str) -> None:
    audit(
        "webhook.deleted", actor, experiment=webhook.experiment, before={"url": webhook.url, "events": webhook.events}
    )
    webhook.delete()
