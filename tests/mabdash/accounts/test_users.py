"""Dashboard users and their roles."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from mabdash.accounts.roles import user_has_role
from mabdash.accounts.services import user_create
from mabdash.errors import InvalidInput

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "can_view", "can_operate", "can_approve"),
    [
        ("viewer", True, False, False),
        ("operator", True, True, False),
        ("approver", True, False, True),
        ("admin", True, True, True),
    ],
)
def test_roles(role, can_view, can_operate, can_approve):
    user = user_create(username=f"u-{role}", password="a-long-password-1", role=role)
    assert (user_has_role(user, "viewer"), user_has_role(user, "operator"), user_has_role(user, "approver")) == (
        can_view,
        can_operate,
        can_approve,
    )


def test_unknown_role_and_duplicate_user_are_refused():
    with pytest.raises(InvalidInput) as caught:
        user_create(username="x", password="a-long-password-1", role="god")
    assert list(caught.value.errors) == ["role"]
    user_create(username="x", password="a-long-password-1", role="viewer")
    with pytest.raises(InvalidInput) as caught:
        user_create(username="x", password="a-long-password-1", role="viewer")
    assert caught.value.errors == {"username": ["user 'x' already exists"]}


@pytest.mark.parametrize(
    ("password", "reasons"),
    [
        (
            "123",
            [
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric.",
            ],
        ),
        ("password", ["This password is too common."]),
        ("mallory-x", ["The password is too similar to the username."]),
    ],
)
def test_weak_passwords_are_refused_with_every_reason(password, reasons):
    with pytest.raises(InvalidInput) as caught:
        user_create(username="mallory-x", password=password, role="viewer")
    assert caught.value.errors == {"password": reasons}
    assert not User.objects.filter(username="mallory-x").exists()


def test_create_user_command(monkeypatch, capsys):
    monkeypatch.setenv("NEW_PASSWORD", "correct-horse-battery")
    call_command("create_user", "ana", "--role", "approver", "--password-env", "NEW_PASSWORD")
    assert capsys.readouterr().out.strip() == "created approver 'ana'"
    from django.contrib.auth.models import User

    user = User.objects.get(username="ana")
    assert user.check_password("correct-horse-battery") and user_has_role(user, "approver")
