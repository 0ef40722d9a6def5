from django.urls import path

from mabdash.control import apis

urlpatterns = [
    path("experiments/<exp:slug>/actions/", apis.ExperimentActionApi.as_view(), name="api-experiment-actions"),
    path("experiments/<exp:slug>/status/", apis.ExperimentStatusApi.as_view(), name="api-experiment-status"),
    path("experiments/<exp:slug>/arms/", apis.ExperimentArmAddApi.as_view(), name="api-experiment-arms"),
    path("experiments/<exp:slug>/settings/", apis.ExperimentSettingsApi.as_view(), name="api-experiment-settings"),
    path("experiments/<exp:slug>/requests/", apis.ExperimentRequestListApi.as_view(), name="api-experiment-requests"),
    path("experiments/<exp:slug>/webhooks/", apis.WebhookListApi.as_view(), name="api-experiment-webhooks"),
    path("requests/<id:request_id>/approve/", apis.RequestApproveApi.as_view(), name="api-request-approve"),
    path("requests/<id:request_id>/reject/", apis.RequestRejectApi.as_view(), name="api-request-reject"),
    path("requests/<id:request_id>/withdraw/", apis.RequestWithdrawApi.as_view(), name="api-request-withdraw"),
    path("webhooks/<id:webhook_id>/", apis.WebhookDetailApi.as_view(), name="api-webhook"),
    path("webhooks/<id:webhook_id>/deliveries/", apis.WebhookDeliveryListApi.as_view(), name="api-webhook-deliveries"),
]
