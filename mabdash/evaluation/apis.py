"""REST API for counterfactual reports — thin views over the services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from mabdash.accounts.api import RateLimitedApiView
from mabdash.accounts.permissions import ManageAccess
from mabdash.errors import InvalidInput
from mabdash.evaluation.inputs import REPORT_REQUEST
from mabdash.evaluation.serializers import ReportOutput, ReportRequestInput
from mabdash.evaluation.services import reports
from mabdash.experiments import selectors
from mabdash.experiments.apis import ERRORS, NOT_FOUND
from mabdash.experiments.services.audit import actor_name


class CounterfactualApi(RateLimitedApiView):
    permission_classes = [ManageAccess]

    @extend_schema(
        operation_id="experiments_counterfactual",
        description="The latest counterfactual report of the experiment (any status): what every fixed "
        "alternative and every strategy would have earned on its logged traffic. Poll it while it runs.",
        responses={200: ReportOutput, **ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)
        return Response(ReportOutput(reports.report_latest(experiment)).data)

    @extend_schema(
        operation_id="experiments_counterfactual_request",
        description="Ask for a fresh report. It is computed by the evaluation worker; the answer is the queued "
        "report (or the one already queued or running) — GET shows its progress. Needs an operator or an "
        "admin key.",
        request=ReportRequestInput,
        responses={202: OpenApiResponse(ReportOutput, description="Queued or already running."), **ERRORS, **NOT_FOUND},
    )
    def post(self, request: Request, slug: str) -> Response:
        experiment = selectors.experiment_get(slug, request.user)
        clean, errors = REPORT_REQUEST.check(request.data)
        if errors:
            raise InvalidInput(errors)
        report = reports.report_request(experiment, actor_name(request.user), since=clean.get("since"))
        return Response(ReportOutput(report).data, status=status.HTTP_202_ACCEPTED)
