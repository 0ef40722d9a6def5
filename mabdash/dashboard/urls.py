from django.contrib.auth import views as auth_views
from django.urls import path

from mabdash.accounts.views import ThrottledLoginView
from mabdash.dashboard.views import audit, editing, experiment, models, overview, requests

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("experiments/new/", editing.experiment_new, name="experiment-new"),
    path("experiments/<exp:slug>/", experiment.experiment_detail, name="experiment-detail"),
    path("experiments/<exp:slug>/data/", experiment.experiment_data, name="experiment-data"),
    path("experiments/<exp:slug>/history/", experiment.experiment_history_fragment, name="experiment-history"),
    path("experiments/<exp:slug>/actions/", experiment.experiment_action, name="experiment-action"),
    path("experiments/<exp:slug>/settings/", editing.experiment_settings, name="experiment-settings"),
    path(
        "experiments/<exp:slug>/counterfactual/",
        experiment.experiment_counterfactual,
        name="experiment-counterfactual",
    ),
    path("requests/<id:request_id>/<str:decision>/", requests.request_decision, name="request-decision"),
    path("models/", models.model_list, name="model-list"),
    path("models/new/", editing.model_create, name="model-new"),
    path("models/<id:model_id>/", models.model_detail, name="model-detail"),
    path("audit/", audit.audit_log, name="audit-log"),
]
