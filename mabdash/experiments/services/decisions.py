"""Deciding which model serves a request: the hot path."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from mabdash.accounts.permissions import check_experiment_access
from mabdash.experiments import decision_ids
from mabdash.experiments.models import Experiment
from mabdash.experiments.services.decision_log import decision_buffer
from mabdash.experiments.serving import ServingEntry, serving_cache

_NOTES: dict[str, str] = {
    Experiment.Status.DRAFT: "experiment is a draft; serving its default arm",
    Experiment.Status.PAUSED: "experiment is paused; serving its default arm",
    Experiment.Status.STOPPED: "experiment is stopped; serving its default arm",
}


@dataclass(frozen=True)
class DecisionResult:
    """What decide answers."""

    decision_id: str
    arm: int
    model: dict[str, str]
    propensity: float
    policy_version: int
    serving_version: int
    served_by: str
    experiment_status: str
    note: str | None


def decide(slug: str, principal: Any, at_least: int = 0) -> DecisionResult:
    """Choose an arm for one request and log the decision (buffered).

    Running experiments sample from the cached allocation; draft, paused and stopped ones
    serve their default arm with propensity 1, so serving never breaks. ``at_least``: the
    newest ``serving_version`` the caller has seen (see ``ServingCache.get``).
    """
    entry = serving_cache.get(slug, at_least)
    check_experiment_access(principal, entry.experiment_id, slug)
    issued_ms = time.time_ns() // 1_000_000
    decision_id, position, propensity = draw(entry, issued_ms)
    arm = entry.arms[position]
    decision_buffer.add(
        (decision_id, entry.experiment_id, arm.arm_id, propensity, entry.policy_version, entry.served_by, issued_ms)
    )
    return DecisionResult(
        decision_id=decision_id,
        arm=position,
        model=arm.model,
        propensity=propensity,
        policy_version=entry.policy_version,
        serving_version=entry.serving_version,
        served_by=entry.served_by,
        experiment_status=entry.status,
        note=_NOTES.get(entry.status),
    )


def draw(entry: ServingEntry, issued_ms: int) -> tuple[str, int, float]:
    """One signed decision from the entry's allocation (exactly what is served)."""
    position = entry.sample(random.random())
    propensity = entry.allocation[position]
    decision_id = decision_ids.encode(
        experiment_id=entry.experiment_id,
        position=position,
        policy_version=entry.policy_version,
        issued_ms=issued_ms,
        served_by=entry.served_by,
        propensity=propensity,
    )
    return decision_id, position, propensity
