"""The only writer of policy state.

Every function here locks the experiment's ``PolicyState`` row, changes the policy through
``policies``, advances ``PolicyState.version`` and records what it did in the ledgers — all
in one transaction. The policy ledger is the sequence of versions: version ``v`` is either a
batch of rewards (``Reward.applied_version == v``, applied in ``id`` order) or a
``PolicyChange`` (creation at version 0, an arm added, an arm excluded or re-admitted).
Replaying it (:func:`policy_rebuild`) reproduces the live state exactly, because the policies
define batch updates to equal one-by-one updates bit for bit.

After each reward batch the guardrails (``mabdash.control.guardrails``) run the rollback
detectors in the same transaction.

Exactly once: rewards are claimed with ``UPDATE … SET applied_version … RETURNING`` under
the row lock, in the same transaction as the new state. A worker killed mid-apply rolls
back both; a redelivered or duplicate task finds nothing pending. Two workers on the same
experiment serialise on the lock.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

import policies
from mabdash.experiments.models import (
    AllocationSnapshot,
    Arm,
    Experiment,
    PolicyChange,
    PolicyState,
    Reward,
    lock_experiment,
)


def _nullable(values: np.ndarray) -> list[float | None]:
    """Floats for the charts, rounded to 6 decimals (shorter JSON), NaN (no data) as null."""
    return [None if not math.isfinite(v) else round(float(v), 6) for v in np.asarray(values, dtype=float)]


def _save(state: PolicyState, policy: policies.Policy, applied: int = 0) -> None:
    state.state = policy.get_state()
    state.allocation = policy.allocation().tolist()
    state.applied_count += applied
    state.save()
    Experiment.objects.filter(pk=state.experiment_id).update(serving_version=F("serving_version") + 1)


def _locked(experiment_id: int) -> tuple[PolicyState, policies.Policy]:
    lock_experiment(experiment_id)  # lock order: experiment first (see lock_experiment)
    state = PolicyState.objects.select_for_update().get(experiment_id=experiment_id)
    return state, policies.policy_from_state(state.state)


def _record_change(state: PolicyState, kind: str, data: dict[str, Any]) -> None:
    state.version += 1
    PolicyChange.objects.create(experiment_id=state.experiment_id, version=state.version, kind=kind, data=data)


# --------------------------------------------------------------------------- creation & arms
def policy_initialize(experiment: Experiment, n_arms: int, params: dict[str, Any]) -> PolicyState:
    """Create version 0 of a new experiment's policy (inside the creating transaction)."""
    policy = policies.make_policy(experiment.policy_kind, n_arms, params, seed=experiment.policy_seed)
    PolicyChange.objects.create(
        experiment=experiment,
        version=0,
        kind="create",
        data={"kind": experiment.policy_kind, "n_arms": n_arms, "params": policy.get_params()},
    )
    state = PolicyState.objects.create(
        experiment=experiment, state=policy.get_state(), version=0, allocation=policy.allocation().tolist()
    )
    snapshot_if_due(experiment.pk, policy, 0)  # the charts start at creation
    return state


@transaction.atomic
def policy_add_arm(experiment_id: int, arm_params: dict[str, Any]) -> int:
    """Add an arm to the running policy; return its position."""
    state, policy = _locked(experiment_id)
    position = policy.add_arm(**arm_params)
    _record_change(state, "add_arm", {"params": arm_params})
    _save(state, policy)
    return position


@transaction.atomic
def policy_set_active(experiment_id: int, position: int, active: bool) -> None:
    """Exclude an arm from the allocation (rolled back, paused) or re-admit it."""
    state, policy = _locked(experiment_id)
    if bool(policy.active_[position]) == active:
        return
    if active:
        policy.include(position)
    else:
        policy.exclude(position)
    _record_change(state, "include" if active else "exclude", {"position": position})
    _save(state, policy)


# --------------------------------------------------------------------------- rewards
_CLAIM_SQL = """
UPDATE {table} SET applied_version = %s
WHERE id IN (
    SELECT id FROM {table}
    WHERE experiment_id = %s AND learn = TRUE AND applied_version IS NULL
    ORDER BY id LIMIT %s
)
RETURNING id, arm_id, value
"""


def _claim_pending(experiment_id: int, version: int, limit: int) -> list[tuple[int, int, float]]:
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL.format(table=Reward._meta.db_table), [version, experiment_id, limit])
        return sorted(cursor.fetchall())  # RETURNING order is unspecified; learn in id order


@dataclass(frozen=True)
class ApplyResult:
    """What one apply run did."""

    applied: int
    versions: int
    more_pending: bool
    guardrail_actions: tuple[str, ...] = ()


def apply_pending_rewards(experiment_id: int) -> ApplyResult:
    """Learn from the experiment's pending rewards (idempotent; safe to run concurrently).

    Applies up to ``MABDASH["LEARNING_MAX_PER_TASK"]`` rewards in batches of
    ``MABDASH["LEARNING_BATCH"]``, one ledger version per batch, in one transaction.
    """
    batch = settings.MABDASH["LEARNING_BATCH"]
    limit = settings.MABDASH["LEARNING_MAX_PER_TASK"]
    applied = versions = 0
    more = False
    actions: list[str] = []
    new_rewards: dict[int, list[float]] = defaultdict(list)
    with transaction.atomic():
        state, policy = _locked(experiment_id)
        positions = dict(Arm.objects.filter(experiment_id=experiment_id).values_list("id", "position"))
        while True:
            if applied >= limit:
                more = True
                break
            rows = _claim_pending(experiment_id, state.version + 1, min(batch, limit - applied))
            if not rows:
                break
            state.version += 1
            versions += 1
            arms = [positions[arm_id] for _, arm_id, _ in rows]
            values = [value for _, _, value in rows]
            policy.update(arms, values)
            for position, value in zip(arms, values, strict=True):
                new_rewards[position].append(value)
            applied += len(rows)
        if applied:
            _save(state, policy, applied)
            from mabdash.control.guardrails import guardrails_check  # control builds on learning

            actions = guardrails_check(experiment_id, policy, state.version, dict(new_rewards))
            if actions:  # a rollback changed the policy: snapshot what is served now
                state.refresh_from_db()
                policy = policies.policy_from_state(state.state)
            snapshot_if_due(state.experiment_id, policy, state.version, min_seconds=0 if actions else None)
    return ApplyResult(applied=applied, versions=versions, more_pending=more, guardrail_actions=tuple(actions))


# --------------------------------------------------------------------------- snapshots
def snapshot_if_due(
    experiment_id: int, policy: policies.Policy, version: int, *, min_seconds: float | None = None
) -> bool:
    """Record an allocation snapshot unless one is younger than the minimum interval."""
    now = timezone.now()
    if min_seconds is None:
        min_seconds = settings.MABDASH["SNAPSHOT_MIN_SECONDS"]
    last: datetime | None = (
        AllocationSnapshot.objects.filter(experiment_id=experiment_id)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if last is not None and now - last < timedelta(seconds=min_seconds):
        return False
    served = dict(Arm.objects.filter(experiment_id=experiment_id).values_list("position", "served_count"))
    belief = policy.belief()
    AllocationSnapshot.build(
        experiment_id=experiment_id,
        created_at=now,
        policy_version=version,
        allocation=_nullable(policy.allocation()),
        served=[served.get(i, 0) for i in range(policy.n_arms)],
        reward_counts=policy.counts_.tolist(),
        reward_sums=policy.sums_.tolist(),
        means=_nullable(belief["mean"]),
        lower=_nullable(belief["lower"]),
        upper=_nullable(belief["upper"]),
    ).save()
    return True


def snapshot_running_experiment(experiment_id: int, min_seconds: float = 60.0) -> bool:
    """Snapshot the current state if the last snapshot is older than ``min_seconds``."""
    state = PolicyState.objects.filter(experiment_id=experiment_id).first()
    if state is None:
        return False
    return snapshot_if_due(
        experiment_id, policies.policy_from_state(state.state), state.version, min_seconds=min_seconds
    )


# --------------------------------------------------------------------------- rebuild
def _ledger_rewards(experiment_id: int) -> Iterator[tuple[int, int, float]]:
    yield from (
        Reward.objects.filter(experiment_id=experiment_id, applied_version__isnull=False)
        .order_by("applied_version", "id")
        .values_list("applied_version", "arm_id", "value")
        .iterator(chunk_size=20_000)
    )


def policy_rebuild(experiment_id: int) -> tuple[policies.Policy, int]:
    """Replay the policy ledger from version 0; return the policy and its version."""
    changes = list(PolicyChange.objects.filter(experiment_id=experiment_id).order_by("version"))
    if not changes or changes[0].kind != "create":
        raise ValueError("policy ledger has no creation entry")
    create = changes[0].data
    policy = policies.make_policy(create["kind"], create["n_arms"], create["params"])
    positions = dict(Arm.objects.filter(experiment_id=experiment_id).values_list("id", "position"))
    pending_changes = changes[1:]
    arms: list[int] = []
    values: list[float] = []
    version = 0

    def apply_rewards() -> None:
        if arms:
            policy.update(arms, values)
            arms.clear()
            values.clear()

    def apply_changes_before(limit: float) -> None:
        while pending_changes and pending_changes[0].version < limit:
            apply_rewards()
            change = pending_changes.pop(0)
            if change.kind == "add_arm":
                policy.add_arm(**change.data["params"])
            elif change.kind == "exclude":
                policy.exclude(change.data["position"])
            elif change.kind == "include":
                policy.include(change.data["position"])

    for applied_version, arm_id, value in _ledger_rewards(experiment_id):
        apply_changes_before(applied_version)
        arms.append(positions[arm_id])
        values.append(value)
        version = max(version, applied_version)
    apply_changes_before(math.inf)
    apply_rewards()
    if changes:
        version = max(version, changes[-1].version)
    return policy, version


@transaction.atomic
def policy_replace_with_rebuild(experiment_id: int) -> bool:
    """Overwrite the live state with the rebuilt one; return whether it differed."""
    state, live = _locked(experiment_id)
    rebuilt, version = policy_rebuild(experiment_id)
    differed = rebuilt.get_state() != live.get_state() or version != state.version
    state.version = version
    state.applied_count = Reward.objects.filter(experiment_id=experiment_id, applied_version__isnull=False).count()
    _save(state, rebuilt)
    return differed
