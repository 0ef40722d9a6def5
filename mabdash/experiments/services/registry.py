"""Writes for the model registry."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.db import IntegrityError, transaction

from mabdash.errors import Conflict, InvalidInput
from mabdash.experiments.models import ModelVersion
from mabdash.experiments.services.audit import audit_record

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$")
MAX_METADATA_BYTES = 65_536


@transaction.atomic
def model_version_register(
    *,
    name: str,
    version: str,
    artifact_uri: str,
    validation_score: float | None = None,
    metadata: dict[str, Any] | None = None,
    actor: str,
) -> ModelVersion:
    """Register a trained model version; ``name`` + ``version`` must be new."""
    errors: dict[str, list[str]] = {}
    if not NAME_PATTERN.match(name or ""):
        errors["name"] = ["1-100 characters: letters, digits, . _ -, starting with a letter or digit"]
    if not version or len(version) > 50 or not version.isprintable():
        errors["version"] = ["1-50 printable characters"]
    if not artifact_uri or len(artifact_uri) > 500:
        errors["artifact_uri"] = ["1-500 characters"]
    if validation_score is not None and not math.isfinite(validation_score):
        errors["validation_score"] = ["must be a finite number"]
    metadata = metadata or {}
    if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        errors["metadata"] = [f"at most {MAX_METADATA_BYTES} bytes of JSON"]
    if errors:
        raise InvalidInput(errors)
    try:
        with transaction.atomic():
            model = ModelVersion.objects.create(
                name=name,
                version=version,
                artifact_uri=artifact_uri,
                validation_score=validation_score,
                metadata=metadata,
                registered_by=actor,
            )
    except IntegrityError:
        raise Conflict({"version": [f"model {name!r} version {version!r} is already registered"]}) from None
    audit_record("model.registered", actor, after={"model": str(model), "artifact_uri": artifact_uri})
    return model
