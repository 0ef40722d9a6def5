"""OpenAPI for inputs defined as :class:`mabdash.inputs.Spec`: the schema comes from the spec.

``spec_serializer(spec)`` makes a serializer class that only stands for the spec in
``extend_schema``; the extension below renders it with ``Spec.openapi()``, so the published
schema and the validator are one definition.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from mabdash.inputs import Spec


class SpecSerializer(serializers.Serializer[Any]):
    """Stands for a :class:`Spec` in the schema; never used to validate."""

    spec: ClassVar[Spec]
    #: Optional: the schema of a list of another spec's objects under one key (batches).
    batch_of: ClassVar[tuple[str, type[SpecSerializer], int] | None] = None


def spec_serializer(spec: Spec) -> type[SpecSerializer]:
    """A schema-only serializer class for ``spec`` (named like it, a component of the schema)."""
    return type(spec.name, (SpecSerializer,), {"spec": spec})


def batch_serializer(name: str, key: str, item: type[SpecSerializer], max_items: int) -> type[SpecSerializer]:
    """A schema-only serializer for ``{key: [item, …]}`` with 1 to ``max_items`` items."""
    return type(name, (SpecSerializer,), {"spec": Spec(name=name, fields={}), "batch_of": (key, item, max_items)})


class SpecSerializerExtension(OpenApiSerializerExtension):
    target_class = SpecSerializer
    match_subclasses = True

    def get_name(self, auto_schema: AutoSchema, direction: str) -> str | None:
        return str(self.target.spec.name)

    def map_serializer(self, auto_schema: AutoSchema, direction: Literal["request", "response"]) -> dict[str, Any]:
        if self.target.batch_of is not None:
            key, item, max_items = self.target.batch_of
            reference = auto_schema.resolve_serializer(item, direction).ref
            # Each item is checked on its own: one that is not a valid item is rejected in its
            # outcome, and the batch (its valid items) still succeeds — so any item is allowed.
            items = {
                "anyOf": [
                    reference,
                    {"description": "Anything else: rejected on its own in `results`, the others unaffected."},
                ]
            }
            return {
                "type": "object",
                "properties": {key: {"type": "array", "items": items, "minItems": 1, "maxItems": max_items}},
                "required": [key],
                "additionalProperties": False,
            }
        return self.target.spec.openapi()


#: What every operation can answer besides its own responses, and why.
COMMON_ERRORS = {
    "401": "No or invalid credentials.",
    "403": "Not allowed for this key or user.",
    "404": "No such object (or outside this API key's scope), or no such endpoint.",
    "406": "The Accept header asks for something other than JSON.",
    "414": "The request target is longer than 4,096 characters.",
    "429": "Rate limit reached (docs/OPERATIONS.md); retry after Retry-After seconds.",
    "500": "A failure of the server's own; the body names no cause.",
    "503": "The database is unavailable; nothing was stored. Retry after Retry-After seconds.",
}
BODY_ERRORS = {
    "400": "Invalid input; `errors` names each field and says why.",
    "413": "The body is larger than the limit (or a batch has more than 10,000 rewards).",
    "415": "The body is not `application/json`.",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}

#: OpenAPI links, so a client (and schemathesis' stateful phase) can follow one answer into the
#: next call: operation id → status → link name → (target operation id, parameters, body).
LINKS: dict[str, dict[str, dict[str, tuple[str, dict[str, str], str | None]]]] = {
    "models_register": {"201": {"ModelDetail": ("models_detail", {"model_id": "$response.body#/id"}, None)}},
    "experiments_create": {
        "201": {
            name: (target, {"slug": "$response.body#/slug"}, None)
            for name, target in (
                ("ExperimentDetail", "experiments_detail"),
                ("ExperimentState", "experiments_state"),
                ("Decide", "decide"),
                ("ExperimentActions", "experiments_act"),
                ("ExperimentRequests", "experiments_requests"),
                ("ExperimentStatus", "experiments_set_status"),
                ("ExperimentAddArm", "experiments_add_arm"),
                ("ExperimentWebhooks", "webhooks_list"),
                ("ExperimentWebhookCreate", "webhooks_create"),
            )
        }
    },
    "decide": {"200": {"RewardThisDecision": ("rewards_record", {}, "$response.body#/decision_id")}},
    "webhooks_create": {
        "201": {"WebhookDeliveries": ("webhooks_deliveries", {"webhook_id": "$response.body#/id"}, None)}
    },
}


def add_common_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: document every error any operation can answer,
    with its body and headers, and link operations into one another."""
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOutput"}}}
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            errors = {**COMMON_ERRORS, **(BODY_ERRORS if method in ("post", "put", "patch") else {})}
            for code, description in errors.items():
                answer = responses.setdefault(code, {"description": description, "content": error_body})
                if code in ("429", "503"):
                    answer.setdefault("headers", {}).update(RETRY_AFTER)
            for code, links in LINKS.get(operation.get("operationId", ""), {}).items():
                if code in responses:
                    responses[code]["links"] = {
                        name: {
                            "operationId": target,
                            **({"parameters": parameters} if parameters else {}),
                            **({"requestBody": {"decision_id": body}} if body else {}),
                        }
                        for name, (target, parameters, body) in links.items()
                    }
    return result
