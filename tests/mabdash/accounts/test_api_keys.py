"""API keys: hashed at rest, shown once, scoped, revocable; JSON 401/403 bodies."""

from __future__ import annotations

import hashlib

import pytest

from mabdash.accounts.authentication import forget_cached_keys, principal_for_key
from mabdash.accounts.models import ApiKey
from mabdash.accounts.services import api_key_create, api_key_revoke
from mabdash.errors import InvalidInput

pytestmark = pytest.mark.django_db


def test_only_a_hash_of_the_key_is_stored(experiment):
    created = api_key_create(name="server", experiments=[experiment])
    stored = ApiKey.objects.get(pk=created.api_key.pk)
    assert created.raw_key.startswith(f"mab_{stored.prefix}_")
    assert stored.key_hash == hashlib.sha256(created.raw_key.encode()).hexdigest()
    assert created.raw_key not in str(ApiKey.objects.values().get())


def test_every_generated_key_authenticates(experiment):
    # Secrets are URL-safe base64 and may contain "_", the separator of the prefix.
    keys = [api_key_create(name=f"k{i}", experiments=[experiment]).raw_key for i in range(60)]
    assert any(key.count("_") > 2 for key in keys)
    assert all(principal_for_key(key) is not None for key in keys)


def test_wrong_secret_with_a_real_prefix_is_refused(client_key):
    prefix = client_key.split("_")[1]
    assert principal_for_key(f"mab_{prefix}_{'x' * 32}") is None
    assert principal_for_key("not-a-key") is None


def test_revoked_keys_stop_working(experiment):
    created = api_key_create(name="server", experiments=[experiment])
    assert principal_for_key(created.raw_key) is not None
    api_key_revoke(created.api_key)
    forget_cached_keys()
    assert principal_for_key(created.raw_key) is None


def test_a_key_needs_a_scope():
    with pytest.raises(InvalidInput) as caught:
        api_key_create(name="nowhere")
    assert caught.value.errors == {"experiments": ["give at least one experiment, or all_experiments"]}


def test_missing_credentials_get_a_json_401(api, experiment):
    response = api().post("/api/v1/experiments/churn/decide/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Api-Key realm="mabdash"'
    assert response.json() == {"detail": "Authentication credentials were not provided.", "errors": {}}


def test_an_invalid_key_gets_a_json_401(api, experiment):
    response = api("mab_000000000000_nope").post("/api/v1/experiments/churn/decide/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked API key.", "errors": {}}


def test_the_key_is_never_accepted_in_the_url(api, client_key, experiment):
    response = api().post(f"/api/v1/experiments/churn/decide/?api_key={client_key}")
    assert response.status_code == 401


def test_a_key_scoped_to_one_experiment_cannot_use_another(api, client_key, make_experiment):
    make_experiment("other")
    response = api(client_key).post("/api/v1/experiments/other/decide/")
    # The same answer as for an experiment that does not exist: the key learns nothing.
    missing = api(client_key).post("/api/v1/experiments/ghost/decide/")
    assert (response.status_code, missing.status_code) == (404, 404)
    assert response.json() == {
        "detail": "experiment: no experiment 'other'",
        "errors": {"experiment": ["no experiment 'other'"]},
    }
    assert missing.json() == {
        "detail": "experiment: no experiment 'ghost'",
        "errors": {"experiment": ["no experiment 'ghost'"]},
    }


def test_a_client_key_cannot_manage(api, client_key):
    response = api(client_key).post(
        "/api/v1/models/", {"name": "m", "version": "1", "artifact_uri": "s3://m"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["detail"].startswith("This needs an admin API key or an operator account")


def test_management_command_prints_the_key_once(experiment, capsys):
    from django.core.management import call_command

    call_command("create_api_key", "ci-server", "--experiment", "churn", "--quiet")
    raw_key = capsys.readouterr().out.strip()
    assert principal_for_key(raw_key).name == "ci-server"
