"""The login page, with the per-account failed-login limit."""

from __future__ import annotations

import math
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import HttpResponse

from mabdash.accounts import throttle


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed logins for this account. Try again in %(minutes)s minutes.",
    }

    def clean(self) -> dict[str, Any]:
        username = (self.data.get("username") or "").strip()
        throttle.expire(username)
        remaining = throttle.locked_for(username)
        if remaining is not None:
            # Refused before the password is even checked: guessing gains nothing while locked.
            raise forms.ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"minutes": max(1, math.ceil(remaining.total_seconds() / 60))},
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            throttle.record_failure(username)
            raise
        throttle.record_success(username)
        return cleaned


class ThrottledLoginView(LoginView):
    template_name = "login.html"
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error("__all__", code="locked"):
            response.status_code = 429
        return response
