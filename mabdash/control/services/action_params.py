"""What each action takes, checked one way for the REST API and the dashboard's forms.

Both hand the raw values to :func:`action_params_check`; it names the field of every problem
and returns the normalised parameters (weights summing to 1, minutes as floats, settings
checked with the rules of creation).
"""

from __future__ import annotations

import math
from typing import Any

from mabdash.errors import InvalidInput
from mabdash.experiments.models import Experiment, ModelVersion
from mabdash.experiments.services.experiments import experiment_settings_check

ARM_ACTIONS = ("pin", "pause_arm", "rollback_arm", "restore_arm", "promote")
STATUS_ACTIONS = {"pause": "paused", "resume": "running", "stop": "stopped"}
ACTIONS = (*ARM_ACTIONS, "weights", "clear_override", *STATUS_ACTIONS, "add_arm", "settings", "archive")
#: Actions a person confirms on a second screen in the dashboard (hard to undo).
NEEDS_CONFIRMATION = ("stop", "promote", "rollback_arm", "archive")
MAX_OVERRIDE_MINUTES = 60 * 24 * 365
MAX_REASON = 1000


def reason_check(reason: Any) -> str:
    """A reason for the audit trail: text of at most 1,000 characters."""
    if not isinstance(reason, str):
        raise InvalidInput({"reason": ["must be text"]})
    if len(reason) > MAX_REASON:
        raise InvalidInput({"reason": [f"at most {MAX_REASON:,} characters (got {len(reason):,})"]})
    return reason.strip()


def weights_check(raw: Any, n_arms: int) -> list[float]:
    """One finite weight ≥ 0 per arm, with a finite positive sum; returned normalised to sum 1."""
    if not isinstance(raw, list) or len(raw) != n_arms:
        raise InvalidInput({"weights": [f"must be a list of {n_arms} numbers, one per arm"]})
    numbers: list[float] = []
    for weight in raw:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise InvalidInput({"weights": ["every weight must be a number"]})
        number = float(weight) if not isinstance(weight, int) or abs(weight) < 2**63 else math.inf
        if not math.isfinite(number) or number < 0:
            raise InvalidInput({"weights": ["every weight must be a finite number ≥ 0"]})
        numbers.append(number)
    total = sum(numbers)  # overflows to inf (fsum would raise), which the check below refuses
    if not math.isfinite(total) or total <= 0:
        raise InvalidInput({"weights": ["the weights must have a positive, finite sum"]})
    normalised = [w / total for w in numbers]
    if any(not math.isfinite(w) for w in normalised):
        raise InvalidInput({"weights": ["the weights must have a positive, finite sum"]})
    return normalised


def _minutes(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw <= MAX_OVERRIDE_MINUTES:
        raise InvalidInput({"expires_in_minutes": [f"must be a number in (0, {MAX_OVERRIDE_MINUTES}]"]})
    return float(raw)


def action_params_check(experiment: Experiment, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise an action's parameters; errors name the field."""
    if action not in ACTIONS:
        raise InvalidInput({"action": [f"must be one of {', '.join(ACTIONS)}"]})
    n_arms = experiment.arms.count()
    clean: dict[str, Any] = {}
    if action in ARM_ACTIONS:
        position = params.get("arm")
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < n_arms:
            raise InvalidInput({"arm": [f"must be an arm position in [0, {n_arms})"]})
        clean["arm"] = position
    if action == "weights":
        clean["weights"] = weights_check(params.get("weights"), n_arms)
    if action in ("pin", "weights") and params.get("expires_in_minutes") is not None:
        clean["expires_in_minutes"] = _minutes(params["expires_in_minutes"])
    if action == "add_arm":
        model_id = params.get("model_version")
        if (
            isinstance(model_id, bool)
            or not isinstance(model_id, int)
            or not ModelVersion.objects.filter(pk=model_id).exists()
        ):
            raise InvalidInput({"model_version": [f"no model version with id {model_id}"]})
        clean["model_version"] = model_id
    if action == "settings":
        changes = params.get("settings")
        if not isinstance(changes, dict):
            raise InvalidInput({"settings": ["must be an object of the settings to change"]})
        clean["settings"] = experiment_settings_check(experiment, changes)
    return clean
