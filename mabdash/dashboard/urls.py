from django.contrib.auth import views as auth_views
from django.urls import path

from mabdash.accounts.views import ThrottledLoginView
from mabdash.dashboard import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("experiments/<exp:slug>/", views.experiment_detail, name="experiment-detail"),
    path("experiments/<exp:slug>/data/", views.experiment_data, name="experiment-data"),
    path("experiments/<exp:slug>/actions/", views.experiment_action, name="experiment-action"),
    path("requests/<id:request_id>/<str:decision>/", views.request_decision, name="request-decision"),
    path("models/", views.model_list, name="model-list"),
    path("models/<id:model_id>/", views.model_detail, name="model-detail"),
    path("audit/", views.audit_log, name="audit-log"),
]
