from django.conf import settings
from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from mabdash.converters import DatabaseIdConverter, SlugConverter
from mabdash.health import livez, readyz
from mabdash.monitoring import metrics_view

# Before the includes below: their routes use <id:…>.
register_converter(DatabaseIdConverter, "id")
register_converter(SlugConverter, "exp")

urlpatterns = [
    path("api/v1/", include("mabdash.experiments.urls")),
    path("api/v1/", include("mabdash.control.urls")),
    path("api/v1/", include("mabdash.evaluation.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("livez", livez, name="livez"),
    path("readyz", readyz, name="readyz"),
    path("healthz/", readyz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("mabdash.dashboard.urls")),
]

if settings.MABDASH_BENCH_ENDPOINTS:
    from mabdash.bench_views import noop

    urlpatterns.append(path("bench/noop/", noop, name="bench-noop"))

handler400 = "mabdash.api_errors.bad_request"
handler404 = "mabdash.api_errors.not_found"
handler500 = "mabdash.api_errors.server_error"
