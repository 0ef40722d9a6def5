from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from mabdash.health import healthz
from mabdash.metrics import metrics_view

urlpatterns = [
    path("api/v1/", include("mabdash.experiments.urls")),
    path("api/v1/", include("mabdash.control.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("healthz/", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("mabdash.dashboard.urls")),
]

handler404 = "mabdash.api_errors.not_found"
