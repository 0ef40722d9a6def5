"""Writes for the model registry."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from mabdash.errors import Conflict, InvalidInput
from mabdash.experiments.inputs import MODEL_VERSION
from mabdash.experiments.models import ModelVersion
from mabdash.experiments.services.audit import audit_record


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
    """Register a trained model version; ``name`` + ``version`` must be new.

    Checked against :data:`mabdash.experiments.inputs.MODEL_VERSION`, the definition the
    API's schema is generated from.
    """
    given = {"name": name, "version": version, "artifact_uri": artifact_uri, "validation_score": validation_score}
    clean, errors = MODEL_VERSION.check({**given, "metadata": metadata})
    if errors:
        raise InvalidInput(errors)
    metadata = clean.get("metadata", {})
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
    audit_record(
        "model.registered",
        actor,
        after={"model": str(model), "artifact_uri": artifact_uri},
        summary=f"Registered model {model}",
    )
    return model
