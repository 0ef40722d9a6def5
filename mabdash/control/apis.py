"""REST API for operator actions, approvals and webhooks — thin views over the services."""

from __future__ import annotations

from typing import Any

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
    ArmInput,
    DecisionInput,
    DeliveryOutput,
    RequestOutput,
    SettingsChangeInput,
    StatusInput,
    WebhookCreatedOutput,
    WebhookInput,
    WebhookOutput,
)
from mabdash.control.services import actions, approvals, webhooks
from mabdash.control.services.actions import ActionOutcome
from mabdash.errors import InvalidInput, NotFound
from mabdash.experiments import selectors
from mabdash.experiments.apis import CONFLICT, ERRORS, NOT_FOUND, parse_input
from mabdash.experiments.models import Experiment
from mabdash.experiments.serializers import ArmOutput, ExperimentOutput
from mabdash.experiments.services.audit import actor_name

ONE_PATH = (
    " Goes the way of every change a person makes: on a `four_eyes` experiment it is filed as a request "
    "for another user with the approver role (202) and changes nothing until approved."
)
REQUESTED = {202: OpenApiResponse(ActionOutput, description="Filed for approval (four-eyes experiments).")}


def _submit(
    request: Request, experiment: Experiment, action: str, params: dict[str, Any], data: dict[str, Any]
) -> ActionOutcome:
    return actions.action_submit(
        experiment,
        action,
        params,
        actions.Actor.of(request.user),
        reason=data.get("reason", ""),
        expected_version=data.get("expected_version"),
    )


def _requested(outcome: ActionOutcome) -> Response:
    return Response(ActionOutput(outcome).data, status=status.HTTP_202_ACCEPTED)


class ExperimentActionApi(RateLimitedApiView):
    permission_classes = [ReadAccess]

    @extend_schema(
        operation_id="experiments_act",
        request=ActionInput,
        responses={
            200: OpenApiResponse(ActionOutput, description="Applied now."),
            **REQUESTED,
            **ERRORS,
            **NOT_FOUND,
            **CONFLICT,
        },
        description="Pin an arm, set manual weights (normalised to sum 1), clear them, pause / roll back / "
        "restore an arm, pause, resume or stop the experiment, promote a winner, add an arm, change settings, "
        "or archive." + ONE_PATH,
    )
    def post(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)  # 404 before any input check
        data = parse_input(ActionInput, request)
        names = ("arm", "weights", "expires_in_minutes", "model_version", "settings")
        params: dict[str, Any] = {k: data[k] for k in names if k in data}
        outcome = _submit(request, experiment, data["action"], params, data)
        code = status.HTTP_202_ACCEPTED if outcome.outcome == "requested" else status.HTTP_200_OK
        return Response(ActionOutput(outcome).data, status=code)


STATUS_ACTION = {"paused": "pause", "running": "resume", "stopped": "stop"}


class ExperimentStatusApi(RateLimitedApiView):
    permission_classes = [ManageAccess]

    @extend_schema(
        operation_id="experiments_set_status",
        request=StatusInput,
        responses={200: ExperimentOutput, **REQUESTED, **ERRORS, **NOT_FOUND, **CONFLICT},
        description="Start (from draft), pause, resume or stop the experiment: the actions resume, pause and "
        "stop." + ONE_PATH,
    )
    def post(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)  # 404 before any input check
        data = parse_input(StatusInput, request)
        outcome = _submit(request, experiment, STATUS_ACTION[data["status"]], {}, data)
        if outcome.outcome == "requested":
            return _requested(outcome)
        return Response(ExperimentOutput(selectors.experiment_get(slug, request.user)).data)


class ExperimentArmAddApi(RateLimitedApiView):
    permission_classes = [ManageAccess]

    @extend_schema(
        operation_id="experiments_add_arm",
        request=ArmInput,
        responses={201: ArmOutput, **REQUESTED, **ERRORS, **NOT_FOUND, **CONFLICT},
        description="Add a registered model version as a new arm, also while running." + ONE_PATH,
    )
    def post(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)  # 404 before any input check
        data = parse_input(ArmInput, request)
        outcome = _submit(request, experiment, "add_arm", {"model_version": data["model_version"]}, data)
        if outcome.outcome == "requested":
            return _requested(outcome)
        arm = selectors.experiment_get(slug, request.user).arms.get(model_version_id=data["model_version"])
        return Response(ArmOutput(arm).data, status=status.HTTP_201_CREATED)


class ExperimentSettingsApi(RateLimitedApiView):
    permission_classes = [ManageAccess]

    @extend_schema(
        operation_id="experiments_change_settings",
        request=SettingsChangeInput,
        responses={200: ExperimentOutput, **REQUESTED, **ERRORS, **NOT_FOUND, **CONFLICT},
        description="Change name, description, strategy and its parameters (what was learned is kept: the "
        "new policy relearns the reward ledger), reward window, default arm, guardrails, approval or "
        "rollback mode. Give only what changes." + ONE_PATH,
    )
    def post(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)  # 404 before any input check
        data = parse_input(SettingsChangeInput, request)
        changes = {k: v for k, v in data.items() if k not in ("reason", "expected_version")}
        outcome = _submit(request, experiment, "settings", {"settings": changes}, data)
        if outcome.outcome == "requested":
            return _requested(outcome)
        return Response(ExperimentOutput(selectors.experiment_get(slug, request.user)).data)


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


DECISION_RESPONSES: dict[int, Any] = {200: RequestOutput, **ERRORS, **NOT_FOUND, **CONFLICT}


def _decide(request: Request, request_id: int, approve: bool) -> Response:
    data = parse_input(DecisionInput, request)
    decided = approvals.request_decide(request_id, approve, actions.Actor.of(request.user), reason=data["reason"])
    return Response(RequestOutput(decided).data)


class RequestWithdrawApi(RateLimitedApiView):
    permission_classes = [StaffAccess]

    @extend_schema(
        operation_id="requests_withdraw",
        description="Take back your own pending request (nobody else may).",
        request=DecisionInput,
        responses=DECISION_RESPONSES,
    )
    def post(self, request: Request, request_id: int) -> Response:
        data = parse_input(DecisionInput, request)
        withdrawn = approvals.request_withdraw(request_id, actions.Actor.of(request.user), reason=data["reason"])
        return Response(RequestOutput(withdrawn).data)


class RequestApproveApi(RateLimitedApiView):
    permission_classes = [ReadAccess]

    @extend_schema(
        operation_id="requests_approve",
        description="Approve: the action is carried out now. Needs "
        "the approver role, and another user than the requester.",
        request=DecisionInput,
        responses=DECISION_RESPONSES,
    )
    def post(self, request: Request, request_id: int) -> Response:
        return _decide(request, request_id, approve=True)


class RequestRejectApi(RateLimitedApiView):
    permission_classes = [ReadAccess]

    @extend_schema(
        operation_id="requests_reject",
        description="Reject a request, or veto a proposed rollback.",
        request=DecisionInput,
        responses=DECISION_RESPONSES,
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
