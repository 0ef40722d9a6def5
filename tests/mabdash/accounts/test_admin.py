"""Creating an API key in the admin shows it once; it works; it can be revoked."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages

from mabdash.accounts.authentication import forget_cached_keys, principal_for_key
from mabdash.accounts.models import ApiKey

pytestmark = pytest.mark.django_db


def test_admin_creates_and_revokes_a_key(client, experiment):
    admin = User.objects.create_superuser("root", password="pw-root-123456")
    client.force_login(admin)
    response = client.post(
        "/admin/accounts/apikey/add/",
        {"name": "from-admin", "role": "client", "experiments": [experiment.pk]},
    )
    assert response.status_code == 302
    message = next(str(m) for m in get_messages(response.wsgi_request) if "New API key" in str(m))
    raw_key = message.rsplit(" ", 1)[1]
    assert message.startswith("New API key (shown once, store it now): mab_")
    principal = principal_for_key(raw_key)
    assert principal.name == "from-admin" and principal.experiment_ids == frozenset({experiment.pk})
    key = ApiKey.objects.get(name="from-admin")
    client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    forget_cached_keys()
    assert principal_for_key(raw_key) is None
