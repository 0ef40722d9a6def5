"""REST API for operator actions, approvals and webhooks — thin views over the services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from mabdash.accounts.api import RateLimitedApiView
from mabdash.accounts.permissions import ManageAccess, ReadAccess, StaffAccess
from mabdash.control.models import ActionRequest, Webhook, WebhookDelivery
from mabdash.control.serializers import (
    ActionInput,
    ActionOutput,
    DecisionInput,
    DeliveryOutput,
    RequestOutput,
    WebhookCreatedOutput,
    WebhookInput,
    WebhookOutput,
)
from mabdash.control.services import actions, approvals, webhooks
from mabdash.errors import InvalidInput, NotFound
from mabdash.experiments import selectors
from mabdash.experiments.apis import CONFLICT, ERRORS, NOT_FOUND, parse_input
from mabdash.experiments.services.audit import actor_name


class ExperimentActionApi(RateLimitedApiView):
    permission_classes = [ReadAccess]

    @extend_schema(
        operation_id="experiments_act",
        request=ActionInput,
        responses={
            200: OpenApiResponse(ActionOutput, description="Applied now."),
            202: OpenApiResponse(ActionOutput, description="Filed for approval (four-eyes experiments)."),
            **ERRORS,
            **NOT_FOUND,
            **CONFLICT,
        },
        description="Pin an arm, set manual weights, clear them, pause / roll back / restore an arm, pause, "
        "resume or stop the experiment, or promote a winner. Experiments in `four_eyes` approval mode file "
        "the action as a request for another user with the approver role.",
    )
    def post(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)
        data = parse_input(ActionInput, request)
        params = {k: data[k] for k in ("arm", "weights", "expires_in_minutes") if k in data}
        outcome = actions.action_submit(
            experiment,
            data["action"],
            params,
            actions.Actor.of(request.user),
            reason=data["reason"],
            expected_version=data.get("expected_version"),
        )
        code = status.HTTP_202_ACCEPTED if outcome.outcome == "requested" else status.HTTP_200_OK
        return Response(ActionOutput(outcome).data, status=code)


class ExperimentRequestListApi(RateLimitedApiView):
    permission_classes = [StaffAccess]

    @extend_schema(
        operation_id="experiments_requests", responses={200: RequestOutput(many=True), **ERRORS, **NOT_FOUND}
    )
    def get(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)
        requests = ActionRequest.objects.filter(experiment=experiment).select_related("experiment")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in ActionRequest.Status.values:
                raise InvalidInput({"status": [f"must be one of {', '.join(ActionRequest.Status.values)}"]})
            requests = requests.filter(status=wanted)
        return Response(RequestOutput(requests[:200], many=True).data)


DECISION_SCHEMA = {"request": DecisionInput, "responses": {200: RequestOutput, **ERRORS, **NOT_FOUND, **CONFLICT}}


def _decide(request: Request, request_id: int, approve: bool) -> Response:
    data = parse_input(DecisionInput, request)
    decided = approvals.request_decide(request_id, approve, actions.Actor.of(request.user), reason=data["reason"])
    return Response(RequestOutput(decided).data)


class RequestApproveApi(RateLimitedApiView):
    permission_classes = [ReadAccess]

    @extend_schema(
        operation_id="requests_approve",
        description="Approve: the action is carried out now. Needs "
        "the approver role, and another user than the requester.",
        **DECISION_SCHEMA,
    )
    def post(self, request: Request, request_id: int) -> Response:
        return _decide(request, request_id, approve=True)


class RequestRejectApi(RateLimitedApiView):
    permission_classes = [ReadAccess]

    @extend_schema(
        operation_id="requests_reject", description="Reject a request, or veto a proposed rollback.", **DECISION_SCHEMA
    )
    def post(self, request: Request, request_id: int) -> Response:
        return _decide(request, request_id, approve=False)


class WebhookListApi(RateLimitedApiView):
    permission_classes = [StaffAccess, ManageAccess]

    @extend_schema(operation_id="webhooks_list", responses={200: WebhookOutput(many=True), **ERRORS, **NOT_FOUND})
    def get(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)
        return Response(WebhookOutput(Webhook.objects.filter(experiment=experiment).order_by("id"), many=True).data)

    @extend_schema(
        operation_id="webhooks_create",
        request=WebhookInput,
        responses={201: WebhookCreatedOutput, **ERRORS, **NOT_FOUND},
    )
    def post(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)
        data = parse_input(WebhookInput, request)
        webhook = webhooks.webhook_create(
            experiment,
            url=data["url"],
            events=data["events"],
            secret=data.get("secret"),
            actor=actor_name(request.user),
        )
        return Response(WebhookCreatedOutput(webhook).data, status=status.HTTP_201_CREATED)


def _webhook(request: Request, webhook_id: int) -> Webhook:
    webhook = Webhook.objects.select_related("experiment").filter(pk=webhook_id).first()
    if webhook is None:
        raise NotFound({"webhook": [f"no webhook {webhook_id}"]})
    selectors.experiment_get(webhook.experiment.slug, request.user)  # scope check
    return webhook


class WebhookDetailApi(RateLimitedApiView):
    permission_classes = [StaffAccess, ManageAccess]

    @extend_schema(operation_id="webhooks_delete", responses={204: None, **ERRORS, **NOT_FOUND})
    def delete(self, request: Request, webhook_id: int) -> Response:
        webhooks.webhook_delete(_webhook(request, webhook_id), actor=actor_name(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(RateLimitedApiView):
    permission_classes = [StaffAccess, ManageAccess]

    @extend_schema(
        operation_id="webhooks_deliveries", responses={200: DeliveryOutput(many=True), **ERRORS, **NOT_FOUND}
    )
    def get(self, request: Request, webhook_id: int) -> Response:
        webhook = _webhook(request, webhook_id)
        return Response(DeliveryOutput(WebhookDelivery.objects.filter(webhook=webhook)[:200], many=True).data)
