"""Security checks, one test per item (check --deploy and key scoping live in their own files:
tests/deploy/test_settings.py, tests/mabdash/accounts/test_api_keys.py)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from mabdash.accounts import throttle
from mabdash.accounts.models import LoginThrottle
from mabdash.security import POLICY
from tests.deploy.test_settings import PRODUCTION_ENV

ROOT = Path(__file__).resolve().parents[2]


def test_api_keys_are_stored_hashed_only(client_key):
    from mabdash.accounts.models import ApiKey

    stored = ApiKey.objects.get()
    assert client_key not in (stored.key_hash, stored.prefix) and len(stored.key_hash) == 64


def test_production_cookies_are_secure_httponly_and_samesite(tmp_path):
    code = (
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE, "
        "s.CSRF_COOKIE_SECURE, s.CSRF_COOKIE_HTTPONLY, s.CSRF_COOKIE_SAMESITE, s.SECURE_HSTS_SECONDS)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **PRODUCTION_ENV, "MABDASH_VAR_DIR": str(tmp_path)},
        check=True,
    )
    assert result.stdout.split() == ["True", "True", "Lax", "True", "True", "Lax", "31536000"]


def test_every_dashboard_form_that_posts_carries_a_csrf_token():
    templates = list((ROOT / "templates").glob("*.html"))
    forms = 0
    for path in templates:
        for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", path.read_text(), flags=re.S | re.I):
            forms += 1
            assert "{% csrf_token %}" in form, f"{path.name}: a POST form without csrf_token"
    assert forms >= 6


@pytest.mark.django_db
def test_posts_without_a_csrf_token_are_refused(operator, experiment):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    for path in ("/experiments/churn/actions/", "/requests/1/approve/", "/logout/"):
        assert client.post(path, {"action": "pause"}).status_code == 403, path


@pytest.mark.django_db
def test_security_headers(settings, operator):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    client = Client()
    client.force_login(operator)
    response = client.get("/", secure=True)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Content-Security-Policy"] == POLICY
    assert "frame-ancestors 'none'" in POLICY and "script-src 'self';" in POLICY  # no inline or eval'd scripts
    api = client.get("/api/v1/models/")
    assert api["Content-Security-Policy"] == POLICY and api["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_failed_logins_lock_the_account_for_fifteen_minutes(operator):
    client = Client()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            assert client.post("/login/", {"username": "olivia", "password": "wrong"}).status_code == 200
        locked = client.post("/login/", {"username": "olivia", "password": "pw-olivia-1234"})
        assert locked.status_code == 429  # even the right password is refused while locked
        assert "Too many failed logins for this account. Try again in 15 minutes." in locked.content.decode()
        other = client.post("/login/", {"username": "victor", "password": "wrong"})
        assert other.status_code == 200  # per account, not per client
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        response = client.post("/login/", {"username": "olivia", "password": "pw-olivia-1234"})
        assert response.status_code == 302
    assert not LoginThrottle.objects.filter(username="olivia").exists()


@pytest.mark.django_db
def test_failures_outside_the_window_start_a_new_count(operator):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(4):
            throttle.record_failure("olivia")
    with time_machine.travel(start + timedelta(minutes=20), tick=False):
        assert throttle.record_failure("olivia") == 1
        assert throttle.locked_for("olivia") is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_failure_counter_is_atomic_under_concurrency():
    barrier = threading.Barrier(12)

    def guess():
        try:
            barrier.wait()
            throttle.record_failure("target")
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert LoginThrottle.objects.get(username="target").failures == 12


@pytest.mark.django_db
def test_keys_never_appear_in_logs(api, client_key, experiment, caplog):
    caplog.set_level(logging.DEBUG)
    api(client_key).post("/api/v1/experiments/churn/decide/")
    api(client_key).post("/api/v1/rewards/", {"value": "bad"}, format="json")
    api(client_key + "tampered").post("/api/v1/experiments/churn/decide/")
    assert client_key not in caplog.text and client_key.split("_", 2)[2] not in caplog.text


@pytest.mark.django_db
def test_keys_in_a_query_string_are_ignored(api, client_key, experiment):
    assert api().get(f"/api/v1/experiments/churn/state/?api_key={client_key}").status_code == 401
    assert api().get(f"/api/v1/experiments/churn/state/?key={client_key}").status_code == 401
