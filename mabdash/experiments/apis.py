"""REST API views under /api/v1/: thin — parse, call a service or selector, serialize."""

from __future__ import annotations

from collections import Counter
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from mabdash import metrics
from mabdash.accounts.api import RateLimitedApiView
from mabdash.accounts.permissions import ManageAccess, ReadAccess, ServeAccess
from mabdash.errors import InvalidInput
from mabdash.experiments import selectors
from mabdash.experiments.inputs import MAX_REWARD_BATCH, MODEL_VERSION
from mabdash.experiments.serializers import (
    DecisionOutput,
    DecisionReportInput,
    DecisionReportOutput,
    ErrorOutput,
    ExperimentInput,
    ExperimentOutput,
    ExperimentPage,
    ModelVersionInput,
    ModelVersionOutput,
    ModelVersionPage,
    RewardBatchInput,
    RewardBatchOutput,
    RewardInput,
    RewardOutcomeOutput,
    SnapshotOutput,
    StateOutput,
)
from mabdash.experiments.services import experiments, registry
from mabdash.experiments.services.audit import actor_name
from mabdash.experiments.services.decisions import decide
from mabdash.experiments.services.rewards import rewards_record
from mabdash.experiments.services.snapshots import MAX_BLOCK, REFRESH_SECONDS, decisions_report, snapshot_get
from mabdash.parsers import PayloadTooLarge

ERRORS = {
    400: OpenApiResponse(ErrorOutput, description="Invalid input; `errors` names each field."),
    401: OpenApiResponse(ErrorOutput, description="No or invalid credentials."),
    403: OpenApiResponse(ErrorOutput, description="Not allowed for this key or user."),
}
NOT_FOUND = {404: OpenApiResponse(ErrorOutput, description="No such object.")}
CONFLICT = {409: OpenApiResponse(ErrorOutput, description="Clashes with the current state.")}


def parse_input(serializer_class: type, request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidInput({"body": ["must be a JSON object"]})
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class Pagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


# --------------------------------------------------------------------------- model registry
class ModelVersionListApi(RateLimitedApiView):
    permission_classes = [ManageAccess]

    @extend_schema(operation_id="models_list", responses={200: ModelVersionPage, **ERRORS})
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.model_version_list(), request, view=self)
        return paginator.get_paginated_response(ModelVersionOutput(page, many=True).data)

    @extend_schema(
        operation_id="models_register",
        request=ModelVersionInput,
        responses={201: ModelVersionOutput, **ERRORS, **CONFLICT},
    )
    def post(self, request: Request) -> Response:
        clean, errors = MODEL_VERSION.check(request.data)
        if errors:
            raise InvalidInput(errors)
        model = registry.model_version_register(**clean, actor=actor_name(request.user))
        return Response(ModelVersionOutput(model).data, status=status.HTTP_201_CREATED)


class ModelVersionDetailApi(RateLimitedApiView):
    permission_classes = [ReadAccess]

    @extend_schema(operation_id="models_detail", responses={200: ModelVersionOutput, **ERRORS, **NOT_FOUND})
    def get(self, request: Request, model_id: int) -> Response:
        return Response(ModelVersionOutput(selectors.model_version_get(model_id)).data)


# --------------------------------------------------------------------------- experiments
class ExperimentListApi(RateLimitedApiView):
    permission_classes = [ManageAccess]

    @extend_schema(operation_id="experiments_list", responses={200: ExperimentPage, **ERRORS})
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.experiment_list(request.user), request, view=self) or []
        overrides = selectors.overrides_active([experiment.pk for experiment in page])
        return paginator.get_paginated_response(
            ExperimentOutput(page, many=True, context={"overrides": overrides}).data
        )

    @extend_schema(
        operation_id="experiments_create",
        request=ExperimentInput,
        responses={201: ExperimentOutput, **ERRORS, **CONFLICT},
    )
    def post(self, request: Request) -> Response:
        data = parse_input(ExperimentInput, request)
        policy = data.pop("policy")
        model_version_ids = data.pop("arms")
        experiment = experiments.experiment_create(
            **data,
            model_version_ids=model_version_ids,
            policy_kind=policy["kind"],
            policy_params=policy["params"],
            policy_seed=policy["seed"],
            actor=actor_name(request.user),
        )
        return Response(ExperimentOutput(experiment).data, status=status.HTTP_201_CREATED)


class ExperimentDetailApi(RateLimitedApiView):
    permission_classes = [ReadAccess]

    @extend_schema(operation_id="experiments_detail", responses={200: ExperimentOutput, **ERRORS, **NOT_FOUND})
    def get(self, request: Request, slug: str) -> Response:
        return Response(ExperimentOutput(selectors.experiment_get(slug, request.user)).data)


class ExperimentStateApi(RateLimitedApiView):
    permission_classes = [ReadAccess]

    @extend_schema(operation_id="experiments_state", responses={200: StateOutput, **ERRORS, **NOT_FOUND})
    def get(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)
        return Response(StateOutput(selectors.experiment_state(experiment)).data)


# --------------------------------------------------------------------------- decide & rewards
MIN_SERVING_VERSION = OpenApiParameter(
    "min_serving_version",
    int,
    description="The `serving_version` of the newest snapshot you hold: the answer is drawn from that "
    "allocation or a newer one, never an older one a lagging web process still caches.",
)


def _query_count(request: Request, name: str, maximum: int, problem: str) -> int:
    """A non-negative integer query parameter, 0 when absent; anything else is a 400 naming it
    (``str.isdigit`` alone would take "²" and other non-ASCII digits)."""
    text = request.query_params.get(name, "0")
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)) or int(text) > maximum:
        raise InvalidInput({name: [problem]})
    return int(text)


def _min_serving_version(request: Request) -> int:
    return _query_count(
        request, "min_serving_version", 10**18 - 1, "must be a non-negative integer (at most 18 digits)"
    )


class DecideApi(RateLimitedApiView):
    permission_classes = [ServeAccess]
    rate_scope = "serve"

    @extend_schema(
        operation_id="decide",
        request=None,
        parameters=[MIN_SERVING_VERSION],
        responses={
            200: DecisionOutput,
            **ERRORS,
            **NOT_FOUND,
            503: OpenApiResponse(ErrorOutput, description="Database down and experiment not cached yet."),
        },
        description="Choose the model for one request. Paused, stopped and draft experiments "
        "answer with their default arm (`served_by: default`) and a note.",
    )
    def post(self, request: Request, slug: str) -> Response:
        with metrics.DECIDE_SECONDS.time():
            result = decide(slug, request.user, _min_serving_version(request))
        return Response(
            {
                "decision_id": result.decision_id,
                "arm": result.arm,
                "model": result.model,
                "propensity": result.propensity,
                "policy_version": result.policy_version,
                "serving_version": result.serving_version,
                "served_by": result.served_by,
                "experiment_status": result.experiment_status,
                "note": result.note,
            }
        )


class SnapshotApi(RateLimitedApiView):
    permission_classes = [ServeAccess]
    rate_scope = "serve"

    @extend_schema(
        operation_id="experiments_snapshot",
        parameters=[
            OpenApiParameter(
                "decisions",
                int,
                description=f"Signed decisions to draw from the snapshot (0–{MAX_BLOCK:,}; default 0).",
            ),
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="The ETag you hold."),
            MIN_SERVING_VERSION,
        ],
        responses={
            200: SnapshotOutput,
            304: OpenApiResponse(
                description="Unchanged since the ETag you sent (only when no decisions are asked for)."
            ),
            **ERRORS,
            **NOT_FOUND,
        },
        description="What decide samples from now, with a block of signed decisions drawn from it, for clients "
        "that decide in-process (docs/CLIENT.md). Report the decisions you serve to "
        "`POST /api/v1/experiments/{slug}/decisions/`.",
    )
    def get(self, request: Request, slug: str) -> Response:
        count = _query_count(request, "decisions", MAX_BLOCK, f"must be an integer in [0, {MAX_BLOCK}]")
        snapshot = snapshot_get(slug, request.user, count, _min_serving_version(request))
        if count == 0 and request.headers.get("If-None-Match") == snapshot.etag:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": snapshot.etag})
        entry = snapshot.entry
        body = {
            "experiment": entry.slug,
            "experiment_status": entry.status,
            "policy_version": entry.policy_version,
            "serving_version": entry.serving_version,
            "served_by": entry.served_by,
            "default_arm": entry.default_position,
            "arms": [
                {"position": arm.position, "model": arm.model, "status": arm.status, "share": share}
                for arm, share in zip(entry.arms, entry.allocation, strict=True)
            ],
            "decisions": [{"decision_id": decision_id, "arm": arm} for decision_id, arm in snapshot.decisions],
            "refresh_seconds": REFRESH_SECONDS,
            "etag": snapshot.etag,
        }
        return Response(body, headers={"ETag": snapshot.etag, "Cache-Control": "no-cache"})


class DecisionReportApi(RateLimitedApiView):
    permission_classes = [ServeAccess]
    rate_scope = "serve"

    @extend_schema(
        operation_id="experiments_report_decisions",
        request=DecisionReportInput,
        responses={
            200: DecisionReportOutput,
            413: OpenApiResponse(ErrorOutput, description="More than 10,000 decisions."),
            **ERRORS,
            **NOT_FOUND,
        },
        description="Record decisions a client served from a snapshot (local mode) in the decision ledger. "
        "Each gets an outcome: accepted, duplicate (recorded before: a retry) or rejected (not signed by this "
        "deployment, or of another experiment).",
    )
    def post(self, request: Request, slug: str) -> Response:
        body = request.data if request.stream is not None else None
        if not isinstance(body, dict) or "decisions" not in body:
            raise InvalidInput({"decisions": ['required: the body is {"decisions": [decision ids]}']})
        if set(body) != {"decisions"}:
            raise InvalidInput({sorted(set(body) - {"decisions"})[0]: ["unexpected field next to decisions"]})
        items = body["decisions"]
        if not isinstance(items, list) or not items:
            raise InvalidInput({"decisions": ["must be a non-empty list of decision ids"]})
        if len(items) > MAX_BLOCK:
            raise PayloadTooLarge(f"decisions: {len(items)} items; at most {MAX_BLOCK} per request")
        outcomes = decisions_report(slug, request.user, items)
        counts = Counter(outcome.status for outcome in outcomes)
        return Response(
            {
                "accepted": counts["accepted"],
                "duplicate": counts["duplicate"],
                "rejected": counts["rejected"],
                "results": [outcome.as_dict() for outcome in outcomes],
            }
        )


class RewardRecordApi(RateLimitedApiView):
    permission_classes = [ServeAccess]
    rate_scope = "serve"

    @extend_schema(
        operation_id="rewards_record",
        request=PolymorphicProxySerializer(
            component_name="RewardRequest",
            serializers=[RewardInput, RewardBatchInput],
            resource_type_field_name=None,
        ),
        responses={
            200: PolymorphicProxySerializer(
                component_name="RewardResponse",
                serializers=[RewardBatchOutput, RewardOutcomeOutput],
                resource_type_field_name=None,
            ),
            201: RewardOutcomeOutput,
            409: RewardOutcomeOutput,
            413: OpenApiResponse(ErrorOutput, description="Body or batch too large."),
            503: OpenApiResponse(ErrorOutput, description="Database down: nothing stored; retry."),
            **ERRORS,
        },
        description='One reward object, or `{"rewards": [...]}` with up to 10,000. Each item gets an '
        "outcome: accepted, duplicate (same event id and payload), conflict (same event id, different "
        "payload) or rejected (with the field and reason). Accepted rewards are committed before the answer. "
        "A single reward answers 201 accepted, 200 duplicate, 409 conflict or 400 rejected; a batch answers 200.",
    )
    def post(self, request: Request) -> Response:
        with metrics.REWARD_REQUEST_SECONDS.time():
            return self._record(request)

    def _record(self, request: Request) -> Response:
        if request.stream is None:
            raise InvalidInput({"body": ['empty; send a reward object or {"rewards": [...]}']})
        body = request.data
        if not isinstance(body, dict):
            raise InvalidInput({"body": ['must be a reward object or {"rewards": [...]}']})
        if "rewards" not in body:
            (outcome,) = rewards_record([body], request.user)
            metrics.REWARDS.labels(outcome.status).inc()
            code = {"accepted": 201, "duplicate": 200, "conflict": 409, "rejected": 400}[outcome.status]
            data = outcome.as_dict()
            if outcome.errors:
                data["detail"] = "; ".join(f"{k}: {', '.join(v)}" for k, v in outcome.errors.items())
            return Response(data, status=code)
        items = body["rewards"]
        if set(body) != {"rewards"}:
            raise InvalidInput({sorted(set(body) - {"rewards"})[0]: ["unexpected field next to rewards"]})
        if not isinstance(items, list):
            raise InvalidInput({"rewards": ["must be a list of reward objects"]})
        if len(items) > MAX_REWARD_BATCH:
            raise PayloadTooLarge(f"rewards: {len(items)} items; at most {MAX_REWARD_BATCH} per request")
        if not items:
            raise InvalidInput({"rewards": ["must not be empty"]})
        outcomes = rewards_record(items, request.user)
        counts = Counter(outcome.status for outcome in outcomes)
        for status_name, count in counts.items():
            metrics.REWARDS.labels(status_name).inc(count)
        return Response(
            {
                "accepted": counts["accepted"],
                "duplicate": counts["duplicate"],
                "conflict": counts["conflict"],
                "rejected": counts["rejected"],
                "results": [outcome.as_dict() for outcome in outcomes],
            }
        )
