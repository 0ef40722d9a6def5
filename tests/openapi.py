"""Check API responses against the project's own OpenAPI 3.0 schema (drf-spectacular).

OpenAPI 3.0 schemas are almost JSON Schema: ``nullable`` is turned into a null type and
``$ref`` into a JSON Schema reference before validating with jsonschema.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema


def _to_json_schema(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _to_json_schema(v) for k, v in node.items()}
        if node.pop("nullable", False):
            node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    return node


class OpenApi:
    """The schema, with lookup of an operation by request path and method."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = _to_json_schema(copy.deepcopy(document.get("components", {})))
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in document["paths"]
        ]

    def operations(self) -> list[tuple[str, str, str]]:
        """(operationId, method, path template) of every operation."""
        return [
            (op["operationId"], method.upper(), path)
            for path, item in self.document["paths"].items()
            for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")
        ]

    def operation_for(self, method: str, url_path: str) -> tuple[str, dict[str, Any]]:
        url_path = url_path.partition("?")[0]
        for pattern, template in self.routes:
            if pattern.match(url_path):
                return template, self.document["paths"][template][method.lower()]
        raise KeyError(f"{method} {url_path} is not in the schema")

    def validate(self, method: str, url_path: str, status: int, body: Any) -> str:
        """Validate a response body; return the operationId."""
        _, operation = self.operation_for(method, url_path)
        responses = operation["responses"]
        spec = responses.get(str(status))
        assert spec is not None, f"status {status} is not documented for {operation['operationId']}"
        schema = spec.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            assert body is None, f"{operation['operationId']} {status} documents no body but returned one"
        else:
            full = {**_to_json_schema(schema), "components": self.components}
            jsonschema.validate(body, full)  # "#/components/..." refs resolve inside `full`
        return operation["operationId"]
