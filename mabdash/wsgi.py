"""The WSGI application, behind a guard for what must be settled before Django reads a request.

- A request target (path and query) longer than ``MAX_TARGET`` characters gets a JSON 414
  (gunicorn's own limit is lifted in gunicorn.conf.py so that its HTML page never answers).
- A body sent with ``Transfer-Encoding: chunked`` has no Content-Length, and Django would
  read it as empty — a silent misreading. The guard reads it (the server de-chunks), up to
  the body limit (JSON 413 beyond), and hands Django a body with its length.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mabdash.settings")

MAX_TARGET = 4096

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _json(start_response: StartResponse, status: str, detail: str) -> list[bytes]:
    body = json.dumps({"detail": detail, "errors": {}}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class RequestGuard:
    """WSGI middleware: URI length and chunked bodies (see the module docstring)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", ""))
        if target > MAX_TARGET:
            return _json(
                start_response, "414 URI Too Long", f"The request target is longer than {MAX_TARGET} characters."
            )
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            body = environ["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                return _json(
                    start_response, "413 Content Too Large", f"Request body is larger than the limit of {limit} bytes."
                )
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


application = RequestGuard(get_wsgi_application())
