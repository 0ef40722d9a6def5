"""A Content Security Policy for every response (Django 5.2 has none built in).

The dashboard loads scripts and styles only from this site (Plotly.js is served from
static/, page data travels in ``application/json`` script tags, never inline code).
Plotly draws with inline ``style`` attributes, hence ``style-src 'unsafe-inline'``. The API
docs page uses drf-spectacular's split Swagger view, which loads its bootstrap script from a
URL instead of inlining it, so it works under the same policy.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", POLICY)
        return response
