"""The framework's own ceiling: Django with no middleware and no apps, one JSON view.

    gunicorn bench.bare_django:application

``bench.service`` serves it under gunicorn with 3 sync workers, as it serves mabdash, so
the two wrk figures show what mabdash's middleware costs on top of Django itself.
"""

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    SECRET_KEY="bench-bare-django-not-secret",
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)


def noop(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [path("noop/", noop)]
application = get_wsgi_application()
