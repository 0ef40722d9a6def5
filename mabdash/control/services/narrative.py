"""Actions in words: the one sentence each audit entry carries, and a change described as
before → after, for people (history cards, the audit page, ``make run``'s console)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mabdash.experiments.models import Arm, Experiment

STATUS_WORDS = {"pause": "Paused the experiment", "resume": "Resumed the experiment", "stop": "Stopped the experiment"}
ARM_WORDS = {
    "pin": "Pinned",
    "pause_arm": "Paused",
    "rollback_arm": "Rolled back",
    "restore_arm": "Restored",
    "promote": "Promoted",
}
ARM_STATUS_WORDS = {"active": "active", "paused": "paused", "rolled_back": "rolled back"}


def arm_labels(experiment: Experiment) -> dict[int, str]:
    """Arm position → "census-tree:2 (arm #1)"."""
    arms = Arm.objects.filter(experiment=experiment).select_related("model_version").order_by("position")
    return {arm.position: f"{arm.model_version.name}:{arm.model_version.version} (arm #{arm.position})" for arm in arms}


def _minutes(params: Mapping[str, Any]) -> str:
    minutes = params.get("expires_in_minutes")
    if minutes is None:
        return "until cleared"
    return f"for {minutes:g} min" if minutes < 120 else f"for {minutes / 60:g} h"


def _percent(share: float) -> str:
    return f"{100 * share:.0f} %" if share >= 0.01 or share == 0 else f"{100 * share:.1f} %"


def action_sentence(experiment: Experiment, action: str, params: Mapping[str, Any]) -> str:
    """What an action does, in one sentence (without who or why)."""
    labels = arm_labels(experiment)
    arm = labels.get(params.get("arm", -1), f"arm #{params.get('arm')}")
    if action == "pin":
        return f"Pinned {arm} {_minutes(params)}: it gets all traffic"
    if action == "promote":
        return f"Promoted {arm}: the experiment stops and serves it from now on"
    if action in ARM_WORDS:
        return f"{ARM_WORDS[action]} {arm}"
    if action == "weights":
        split = ", ".join(
            f"{labels.get(i, f'arm #{i}')} {_percent(w)}" for i, w in enumerate(params.get("weights", []))
        )
        return f"Set manual weights {_minutes(params)}: {split}"
    if action == "clear_override":
        return "Cleared the pin or manual weights: the policy's split is served again"
    if action in STATUS_WORDS:
        if action == "stop":
            return f"{STATUS_WORDS[action]}: it serves its default arm, {labels.get(experiment.default_position)}"
        return STATUS_WORDS[action]
    if action == "add_arm":
        return f"Added model version #{params.get('model_version')} as a new arm"
    if action == "settings":
        return "Changed settings: " + "; ".join(settings_in_words(params.get("settings", {})))
    if action == "archive":
        return "Archived the experiment: stopped, and left off the overview"
    return action.replace("_", " ").capitalize()


def settings_in_words(changes: Mapping[str, Any]) -> list[str]:
    """Each changed setting as "name → value"."""
    words = []
    for name, value in changes.items():
        if name == "policy":
            params = ", ".join(f"{k} {v}" for k, v in sorted(value.get("params", {}).items()) if k != "scores")
            words.append(f"strategy → {value['kind']}" + (f" ({params})" if params else ""))
        elif name == "guardrails":
            words.append("guardrails → " + (", ".join(f"{k} {v}" for k, v in sorted(value.items())) or "defaults"))
        elif name == "retention_days":
            words.append(f"retention → {value} days" if value is not None else "retention → the global default")
        else:
            words.append(f"{name.replace('_', ' ')} → {value}")
    return words


def _override_words(override: Any, labels: Mapping[int, str]) -> str:
    if not override:
        return "none"
    until = f" until {override['expires_at'][11:16]} UTC" if override.get("expires_at") else ""
    if override.get("kind") == "pin":
        return f"pin {labels.get(override.get('position', -1), '?')}{until}"
    weights = override.get("weights") or []
    total = sum(weights) or 1.0
    return "weights " + ", ".join(_percent(w / total) for w in weights) + until


def change_in_words(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, labels: Mapping[int, str]
) -> list[str]:
    """The differences between two control states (as the audit stores them), in words.

    Entries about requests (they hold a request summary, not a control state) change nothing.
    """
    before, after = before or {}, after or {}
    if "request" in after or "request" in before:
        return []
    changes = []
    if before.get("status") != after.get("status") and after.get("status"):
        changes.append(f"status: {before.get('status', '—')} → {after['status']}")
    if before.get("default_arm") != after.get("default_arm") and after.get("default_arm") is not None:
        changes.append(
            f"default arm: {labels.get(before.get('default_arm', -1), '—')} → {labels.get(after['default_arm'])}"
        )
    arms_before, arms_after = before.get("arms"), after.get("arms")
    # Only control states hold arms as {position: status}; other entries (creation) list them.
    arms_before = arms_before if isinstance(arms_before, dict) else {}
    arms_after = arms_after if isinstance(arms_after, dict) else {}
    for position, status in sorted(arms_after.items(), key=lambda item: int(item[0])):
        if arms_before.get(position) != status:
            was = ARM_STATUS_WORDS.get(arms_before.get(position, ""), "new")
            changes.append(f"{labels.get(int(position), position)}: {was} → {ARM_STATUS_WORDS.get(status, status)}")
    overrides = before.get("override"), after.get("override")
    well_formed = all(o is None or isinstance(o, dict) for o in overrides)
    if well_formed and ("override" in before or "override" in after) and overrides[0] != overrides[1]:
        changes.append(
            f"override: {_override_words(before.get('override'), labels)} → "
            f"{_override_words(after.get('override'), labels)}"
        )
    return changes
