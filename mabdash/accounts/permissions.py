"""Who may do what through the API. Messages say what is missing."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from mabdash.accounts.authentication import KeyPrincipal
from mabdash.accounts.roles import KEY_ADMIN, OPERATOR, VIEWER, user_has_role
from mabdash.errors import NotFound


def can_read(principal: Any) -> bool:
    return isinstance(principal, KeyPrincipal) or user_has_role(principal, VIEWER)


def can_serve(principal: Any) -> bool:
    """Decide and post rewards: any API key, or an operator."""
    return isinstance(principal, KeyPrincipal) or user_has_role(principal, OPERATOR)


def can_manage(principal: Any) -> bool:
    """Register models, create and change experiments: admin keys and operators."""
    if isinstance(principal, KeyPrincipal):
        return principal.role == KEY_ADMIN
    return user_has_role(principal, OPERATOR)


def check_experiment_access(principal: Any, experiment_id: int, slug: str) -> None:
    """Raise ``NotFound`` when an API key is not scoped to this experiment.

    Exactly the answer for an experiment that does not exist: a key learns nothing about
    experiments outside its scope, not even that they exist.
    """
    if isinstance(principal, KeyPrincipal) and not principal.allows_experiment(experiment_id):
        raise NotFound({"experiment": [f"no experiment {slug!r}"]})


class ReadAccess(BasePermission):
    message = "Reading needs an API key or a dashboard user with a role (viewer, operator, approver)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return can_read(request.user)


class ServeAccess(BasePermission):
    message = "Deciding and posting rewards needs an API key or an operator account."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return can_serve(request.user)


def is_client_key(principal: Any) -> bool:
    """A model server's key: it decides and posts rewards, and sees nothing else of control."""
    return isinstance(principal, KeyPrincipal) and principal.role != KEY_ADMIN


class StaffAccess(BasePermission):
    message = "This needs a dashboard user with a role or an admin API key; client keys only decide and post rewards."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return can_read(request.user) and not is_client_key(request.user)


class ManageAccess(BasePermission):
    message = "This needs an admin API key or an operator account; reading is allowed to every role."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return can_read(request.user)
        return can_manage(request.user)
