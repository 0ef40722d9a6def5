from django.urls import path

from mabdash.experiments import apis

urlpatterns = [
    path("models/", apis.ModelVersionListApi.as_view(), name="api-models"),
    path("models/<id:model_id>/", apis.ModelVersionDetailApi.as_view(), name="api-model-detail"),
    path("experiments/", apis.ExperimentListApi.as_view(), name="api-experiments"),
    path("experiments/<exp:slug>/", apis.ExperimentDetailApi.as_view(), name="api-experiment-detail"),
    path("experiments/<exp:slug>/decide/", apis.DecideApi.as_view(), name="api-decide"),
    path("experiments/<exp:slug>/snapshot/", apis.SnapshotApi.as_view(), name="api-experiment-snapshot"),
    path("experiments/<exp:slug>/decisions/", apis.DecisionReportApi.as_view(), name="api-experiment-decisions"),
    path("experiments/<exp:slug>/state/", apis.ExperimentStateApi.as_view(), name="api-experiment-state"),
    path("rewards/", apis.RewardRecordApi.as_view(), name="api-rewards"),
]
