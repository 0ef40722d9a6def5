"""Who may see and do what on the dashboard."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseForbidden, JsonResponse
from django.http.response import HttpResponseBase

from mabdash.accounts.roles import VIEWER, user_has_role

View = Callable[..., HttpResponseBase]


def role_required(role: str) -> Callable[[View], View]:
    """Page needs a login (redirect) and ``role`` (403)."""

    def decorator(view: View) -> View:
        @wraps(view)
        @login_required
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not user_has_role(request.user, role):
                return HttpResponseForbidden(f"This page needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def data_endpoint(view: View) -> View:
    """JSON endpoint: anonymous → 401 JSON (no redirect), users without a role → 403 JSON."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return JsonResponse({"detail": "Log in to see dashboard data.", "errors": {}}, status=401)
        if not user_has_role(request.user, VIEWER):
            return JsonResponse({"detail": "Your account has no dashboard role.", "errors": {}}, status=403)
        return view(request, *args, **kwargs)

    return wrapped
