"""Docker cannot run here, so the compose file is checked by reading it: every service's
command points at real modules, settings and files, and the services a deployment needs
are all there with health checks."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = [name for name, spec in SERVICES.items() if spec.get("build") == "."]


def test_the_deployment_has_every_service_with_health_checks():
    assert {"postgres", "redis", "web", "worker", "evaluator", "beat"} <= set(SERVICES)
    for name in ("postgres", "redis", "web", "worker", "evaluator"):
        assert "healthcheck" in SERVICES[name], name
    assert set(APP_SERVICES) == {"migrate", "web", "worker", "evaluator", "beat"}
    assert all(SERVICES[name].get("image") == "mabdash:latest" for name in APP_SERVICES)  # one image


def test_long_running_processes_are_restarted_and_the_migration_is_not():
    restart = {name: SERVICES[name].get("restart") for name in APP_SERVICES}
    assert restart == {
        "migrate": "no",
        "web": "unless-stopped",
        "worker": "unless-stopped",
        "evaluator": "unless-stopped",
        "beat": "unless-stopped",
    }
    assert SERVICES["postgres"]["restart"] == SERVICES["redis"]["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_command_points_at_real_code(name):
    command = SERVICES[name]["command"]
    if command[0] == "gunicorn":
        module, _, attribute = command[1].partition(":")
        assert getattr(importlib.import_module(module), attribute or "application")
        assert (ROOT / command[command.index("--config") + 1]).is_file()
    elif command[0] == "celery":
        app_module = command[command.index("-A") + 1]
        assert importlib.import_module(app_module).celery_app.main == "mabdash"
        assert command[3] in ("worker", "beat")
    else:
        assert command[:2] == ["python", "manage.py"]
        from django.core.management import get_commands

        assert command[2] in get_commands()


def test_every_environment_variable_is_read_by_the_settings():
    settings_source = (ROOT / "mabdash" / "settings.py").read_text() + (ROOT / "gunicorn.conf.py").read_text()
    names = set()
    for name in APP_SERVICES:
        names |= set(SERVICES[name].get("environment", {}))
    assert names
    for variable in names:
        assert re.search(rf'"{variable}"', settings_source), f"{variable} is set in compose but never read"


def test_the_web_health_check_is_liveness(client, db):
    # Liveness, not readiness: a web process whose database is down still serves decide
    # from its last known allocations and must not be restarted for it (docs/OPERATIONS.md).
    probe = SERVICES["web"]["healthcheck"]["test"][-1]
    path = re.search(r"http://127\.0\.0\.1:8000(/[^']*)", probe).group(1)
    assert path == "/livez"
    response = client.get(path)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_the_image_runs_gunicorn_with_the_shared_config():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert 'CMD ["gunicorn", "mabdash.wsgi", "--config", "gunicorn.conf.py"' in dockerfile
    assert "pip install --no-cache-dir --require-hashes -r requirements.txt" in dockerfile
