"""Dashboard users and their roles."""

from __future__ import annotations

import pytest
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
        user_create(username="x", password="pw", role="god")
    assert list(caught.value.errors) == ["role"]
    user_create(username="x", password="pw", role="viewer")
    with pytest.raises(InvalidInput) as caught:
        user_create(username="x", password="pw", role="viewer")
    assert caught.value.errors == {"username": ["user 'x' already exists"]}


def test_create_user_command(monkeypatch, capsys):
    monkeypatch.setenv("NEW_PASSWORD", "correct-horse-battery")
    call_command("create_user", "ana", "--role", "approver", "--password-env", "NEW_PASSWORD")
    assert capsys.readouterr().out.strip() == "created approver 'ana'"
    from django.contrib.auth.models import User

    user = User.objects.get(username="ana")
    assert user.check_password("correct-horse-battery") and user_has_role(user, "approver")
