"""Roles: dashboard users belong to groups, machine clients hold API keys with a role.

- viewer: reads everything it can see, acts on nothing;
- operator: registers models, creates and runs experiments, takes operator actions;
- approver: approves or vetoes requests that need a second person (and can view);
- admin: a Django superuser, can do everything.

API keys have their own roles: ``client`` (decide and post rewards, read state) and
``admin`` (everything the API offers). Either kind can be limited to some experiments.
"""

from __future__ import annotations

from typing import Any

VIEWER = "viewer"
OPERATOR = "operator"
APPROVER = "approver"
USER_ROLES = (VIEWER, OPERATOR, APPROVER)

KEY_CLIENT = "client"
KEY_ADMIN = "admin"
KEY_ROLES = (KEY_CLIENT, KEY_ADMIN)


def user_roles(user: Any) -> set[str]:
    """The roles of a dashboard user (a superuser holds every role)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.is_superuser:
        return {*USER_ROLES, "admin"}
    cached = getattr(user, "_mabdash_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=USER_ROLES).values_list("name", flat=True))
        user._mabdash_roles = cached
    return cached


def user_has_role(user: Any, role: str) -> bool:
    """Whether ``user`` holds ``role``; operators and approvers can also view."""
    roles = user_roles(user)
    if role == VIEWER:
        return bool(roles)
    return role in roles
