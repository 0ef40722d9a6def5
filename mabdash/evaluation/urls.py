from django.urls import path

from mabdash.evaluation import apis

urlpatterns = [
    path(
        "experiments/<exp:slug>/counterfactual/", apis.CounterfactualApi.as_view(), name="api-experiment-counterfactual"
    ),
]
