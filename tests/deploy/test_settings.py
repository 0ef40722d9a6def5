"""Production differs from development only by environment: check --deploy is clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "MABDASH_PRODUCTION": "1",
    "DJANGO_SECRET_KEY": "a-real-deployment-secret-8f2d0c7e4b1a9f6e3d5c2b8a7f4e1d0c9b6a3f8e",
    "DJANGO_ALLOWED_HOSTS": "mabdash.example.com",
    "DJANGO_SECURE_COOKIES": "1",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_BEHIND_TLS_PROXY": "1",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_check_deploy_prints_no_warnings_with_production_environment(tmp_path):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION_ENV, "MABDASH_VAR_DIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    assert result.stderr.strip() == ""


def test_production_refuses_to_start_with_the_development_secret(tmp_path):
    result = manage("check", env={**PRODUCTION_ENV, "DJANGO_SECRET_KEY": "", "MABDASH_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY: must be set in production" in result.stderr


def test_a_retention_that_is_not_a_positive_number_of_days_is_refused_by_name(tmp_path):
    # A negative snapshot retention would put the boundary in a month to come: every snapshot gone.
    for name, value in (("MABDASH_SNAPSHOT_RETENTION_DAYS", "-30"), ("MABDASH_RETENTION_DAYS", "0")):
        result = manage("check", env={name: value, "MABDASH_VAR_DIR": str(tmp_path)})
        assert result.returncode != 0
        assert f"{name}: expected a whole number of days, at least 1, got {value!r}" in result.stderr
    assert (
        manage("check", env={"MABDASH_SNAPSHOT_RETENTION_DAYS": "400", "MABDASH_VAR_DIR": str(tmp_path)}).returncode
        == 0
    )


def test_the_embedded_broker_keeps_every_folder_under_the_var_dir(tmp_path):
    # kombu's filesystem transport puts its broadcast folder in ./control unless told, and
    # one once landed in the repository: every folder must live under MABDASH_VAR_DIR.
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-v",
            "0",
            "-c",
            "from django.conf import settings; "
            "print(sorted(v for k, v in settings.CELERY_BROKER_TRANSPORT_OPTIONS.items() if 'folder' in k))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "MABDASH_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    broker = tmp_path / "broker"
    expected = sorted(str(broker / name) for name in ("control", "processed", "queue", "queue"))
    assert result.stdout.strip() == str(expected)
