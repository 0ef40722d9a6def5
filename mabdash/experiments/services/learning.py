"""The only writer of policy state.

Every change goes through a :class:`PolicySession`: it locks the experiment's
``PolicyState`` row, changes the policy through ``policies``, advances
``PolicyState.version`` and records what it did in the ledgers — all in one transaction.
The policy ledger is the sequence of versions: version ``v`` is either a batch of rewards
(``Reward.applied_version == v``, applied in ``id`` order) or a ``PolicyChange`` (creation
at version 0, an arm added, an arm excluded or re-admitted). Replaying it
(``mabdash.experiments.services.rebuild``) reproduces the live state exactly, because the policies define
batch updates to equal one-by-one updates bit for bit.

This module knows nothing of guardrails or operators: ``mabdash.control``'s learning cycle
opens a session, learns, runs the guardrails and excludes the arms they roll back — all
through the same session, so the state is written once, under the lock already held.

Exactly once: rewards are claimed with ``UPDATE … SET applied_version … RETURNING`` under
the row lock, in the same transaction as the new state. A worker killed mid-apply rolls
back both; a redelivered or duplicate task finds nothing pending. Two workers on the same
experiment serialise on the lock.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

import policies
from mabdash.experiments.models import (
    AllocationSnapshot,
    Arm,
    Experiment,
    PolicyChange,
    PolicyState,
    Reward,
    experiment_versions_bump,
    lock_experiment,
)
from mabdash.experiments.selectors import effective_allocation, override_active, pending_rewards
from mabdash.experiments.services.ledger import outcomes, replay_into


def _nullable(values: np.ndarray) -> list[float | None]:
    """Floats for the charts, rounded to 6 decimals (shorter JSON), NaN (no data) as null."""
    return [None if not math.isfinite(v) else round(float(v), 6) for v in np.asarray(values, dtype=float)]


@dataclass(frozen=True)
class LearnResult:
    """What :meth:`PolicySession.learn_pending` did."""

    applied: int
    versions: int
    more_pending: bool
    #: Arm position → the values just learned, in ledger order (for the guardrails).
    new_rewards: dict[int, list[float]] = field(default_factory=dict)


class PolicySession:
    """An experiment's policy, locked for changes inside the caller's transaction.

    Open it with :func:`policy_session`. Every change (learning, an arm excluded or
    re-admitted, an arm added) advances the policy ledger; the state is written once, when
    the session ends, and ``serving_version`` moves with it. Callers that act on what was
    learned (the guardrails) do so through the same session, under the lock already held.
    """

    def __init__(self, experiment_id: int) -> None:
        lock_experiment(experiment_id)  # lock order: experiment first (see lock_experiment)
        self.experiment_id = experiment_id
        self.state = PolicyState.objects.select_for_update().get(experiment_id=experiment_id)
        self.policy = policies.policy_from_state(self.state.state)
        self.changed = False
        self._applied = 0

    @property
    def version(self) -> int:
        """The policy ledger's version as of now (changes in this session included)."""
        return self.state.version

    def _record_change(self, kind: str, data: dict[str, Any]) -> None:
        self.state.version += 1
        PolicyChange.objects.create(experiment_id=self.experiment_id, version=self.state.version, kind=kind, data=data)
        self.changed = True

    def learn_pending(self) -> LearnResult:
        """Learn from pending rewards: up to ``LEARNING_MAX_PER_TASK``, one version per ``LEARNING_BATCH``.

        Exactly once: rewards are claimed with ``UPDATE … RETURNING`` in this transaction.
        """
        batch = settings.MABDASH["LEARNING_BATCH"]
        limit = settings.MABDASH["LEARNING_MAX_PER_TASK"]
        positions = dict(Arm.objects.filter(experiment_id=self.experiment_id).values_list("id", "position"))
        applied = versions = 0
        new_rewards: dict[int, list[float]] = defaultdict(list)
        while applied < limit:
            rows = _claim_pending(self.experiment_id, self.state.version + 1, min(batch, limit - applied))
            if not rows:
                break
            self.state.version += 1
            versions += 1
            arms, values = outcomes(
                [positions[arm_id] for _, arm_id, _, _ in rows],
                [value for _, _, value, _ in rows],
                [trials for _, _, _, trials in rows],
            )
            self.policy.update(arms, values)
            for position, value in zip(arms, values, strict=True):
                new_rewards[position].append(value)
            applied += len(rows)
        self._applied += applied
        self.changed = self.changed or applied > 0
        return LearnResult(applied, versions, applied >= limit, dict(new_rewards))

    def set_active(self, position: int, active: bool) -> bool:
        """Exclude an arm from the allocation (rolled back, paused) or re-admit it; False if it already was."""
        if bool(self.policy.active_[position]) == active:
            return False
        if active:
            self.policy.include(position)
        else:
            self.policy.exclude(position)
        self._record_change("include" if active else "exclude", {"position": position})
        return True

    def add_arm(self, arm_params: dict[str, Any]) -> int:
        """Add an arm to the policy; return its position."""
        position = self.policy.add_arm(**arm_params)
        self._record_change("add_arm", {"params": arm_params})
        return position

    def reconfigure(self, kind: str, params: dict[str, Any], seed: int) -> None:
        """Switch to another strategy (or other parameters), keeping everything learned.

        The new policy learns every reward applied so far, in ledger order, and keeps the
        set of excluded arms; the rebuild does the same at this ledger version, so it stays
        exact.
        """
        policy = policies.make_policy(kind, self.policy.n_arms, params, seed=seed)
        replay_into(policy, self.experiment_id, before_version=self.state.version + 1)
        policy.active_ = self.policy.active_.copy()
        policy._invalidate()
        self.policy = policy
        self._record_change("reconfigure", {"kind": kind, "params": policy.get_params(), "seed": seed})

    def replace(self, policy: policies.Policy, version: int, applied_count: int) -> None:
        """Overwrite the state (the rebuild command)."""
        self.policy = policy
        self.state.version = version
        self.state.applied_count = applied_count
        self._applied = 0
        self.changed = True

    def save(self) -> None:
        """Write the state and its allocation, and tell every web process (once per session)."""
        self.state.state = self.policy.get_state()
        self.state.allocation = self.policy.allocation().tolist()
        self.state.applied_count += self._applied
        self.state.save()
        experiment_versions_bump(self.experiment_id, control=False)
        self._applied = 0
        self.changed = False


@contextmanager
def policy_session(experiment_id: int) -> Iterator[PolicySession]:
    """Lock an experiment's policy for changes; save it on the way out if it changed.

    Runs in a transaction (its own, or a savepoint of the caller's). Nest nothing: code
    that already holds a session passes it on instead of opening another.
    """
    with transaction.atomic():
        session = PolicySession(experiment_id)
        yield session
        if session.changed:
            session.save()


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


# --------------------------------------------------------------------------- rewards
def _claim_pending(experiment_id: int, version: int, limit: int) -> list[tuple[int, int, float, int]]:
    """Mark the oldest pending rewards as learned at ``version``; return (id, arm id, value,
    trials) in id order (under the session's row lock: learners of one experiment serialise)."""
    pending = pending_rewards(experiment_id).order_by("id")
    table = Reward._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The ledger is partitioned by day: marking by id alone would probe every day's
            # partition for every id (on a month of ledger each claim took twice as long).
            # Found first, then marked within the days they were received — a day or two.
            rows = list(pending.values_list("id", "received_at")[:limit])
            if not rows:
                return []
            cursor.execute(
                f"UPDATE {table} SET applied_version = %s WHERE id = ANY(%s) AND received_at >= %s "
                "AND received_at <= %s AND applied_version IS NULL RETURNING id, arm_id, value, trials",
                [version, [row[0] for row in rows], min(row[1] for row in rows), max(row[1] for row in rows)],
            )
        else:
            subquery, params = pending.values("id")[:limit].query.sql_with_params()
            cursor.execute(
                f"UPDATE {table} SET applied_version = %s WHERE id IN ({subquery}) RETURNING id, arm_id, value, trials",
                [version, *params],
            )
        return sorted(cursor.fetchall())  # RETURNING order is unspecified; learn in id order


def rewards_learn(experiment_id: int) -> LearnResult:
    """Learn from the experiment's pending rewards in a transaction of its own (no guardrails).

    The live pipeline runs ``mabdash.control``'s learning cycle, which adds the guardrails;
    this is for tools and tests of learning alone.
    """
    with policy_session(experiment_id) as session:
        result = session.learn_pending()
        if result.applied:
            snapshot_if_due(experiment_id, session.policy, session.version)
    return result


# --------------------------------------------------------------------------- snapshots
def snapshot_if_due(
    experiment_id: int, policy: policies.Policy, version: int, *, min_seconds: float | None = None
) -> bool:
    """Record an allocation snapshot unless one is younger than the minimum interval."""
    now = timezone.now()
    if min_seconds is None:
        min_seconds = settings.MABDASH["SNAPSHOT_MIN_SECONDS"]
    # A time range, so that PostgreSQL reads only the current month's partition.
    recent = AllocationSnapshot.objects.filter(
        experiment_id=experiment_id, created_at__gt=now - timedelta(seconds=min_seconds)
    )
    if recent.exists():
        return False
    experiment = Experiment.objects.get(pk=experiment_id)
    arms = list(Arm.objects.filter(experiment_id=experiment_id).order_by("position"))
    effective, _ = effective_allocation(
        policy.allocation().tolist(),
        arms,
        override_active(experiment_id, now),
        status=experiment.status,
        default_position=experiment.default_position,
    )
    belief = policy.belief()
    AllocationSnapshot.build(
        experiment_id=experiment_id,
        created_at=now,
        policy_version=version,
        allocation=_nullable(policy.allocation()),
        effective=_nullable(np.asarray(effective)),
        served=[arm.served_count for arm in arms],
        reward_counts=policy.counts_.tolist(),
        reward_sums=policy.sums_.tolist(),
        means=_nullable(belief["mean"]),
        lower=_nullable(belief["lower"]),
        upper=_nullable(belief["upper"]),
    ).save()
    return True


def snapshots_take(min_seconds: float = 60.0) -> int:
    """Snapshot every running experiment whose last snapshot is older than ``min_seconds``."""
    taken = 0
    running = Experiment.objects.filter(status=Experiment.Status.RUNNING).values_list("pk", flat=True)
    for state in PolicyState.objects.filter(experiment_id__in=running):
        policy = policies.policy_from_state(state.state)
        taken += snapshot_if_due(state.experiment_id, policy, state.version, min_seconds=min_seconds)
    return taken
