"""Rebuilding policy state from the ledgers: the proof that the live state is exact.

The rebuild starts from the experiment's latest checkpoint (or version 0 of the policy
ledger when there is none, or when asked to) and replays every later ledger step: reward
batches in (``applied_version``, ``id``) order and ``PolicyChange`` entries — exactly what
the live learner did, because the policies define batch updates to equal one-by-one updates
bit for bit. Its cost therefore grows with the ledger since the checkpoint, not with the
experiment's age.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import policies
from mabdash.experiments.models import PolicyChange, PolicyCheckpoint, PolicyState, RetentionRun
from mabdash.experiments.services.learning import policy_session
from mabdash.experiments.services.ledger import arm_positions, ledger_rewards, outcomes, replay_into


class RebuildImpossible(Exception):
    """The ledger needed for this rebuild is no longer stored (archived by retention)."""


@dataclass(frozen=True)
class Rebuilt:
    """A rebuilt policy, its ledger version, the rewards it has learned, and where the replay started."""

    policy: policies.Policy
    version: int
    applied_count: int
    #: The checkpoint's version the replay started from; None: from the creation (version 0).
    checkpoint_version: int | None

    def matches(self, live: PolicyState) -> bool:
        """Whether this is exactly the live state (learned state and ledger version)."""
        return self.policy.get_state() == live.state and self.version == live.version


def checkpoint_latest(experiment_id: int, *, until_version: int | None = None) -> PolicyCheckpoint | None:
    """The experiment's most recent checkpoint (at or before ``until_version``), if any."""
    checkpoints = PolicyCheckpoint.objects.filter(experiment_id=experiment_id)
    if until_version is not None:
        checkpoints = checkpoints.filter(version__lte=until_version)
    return checkpoints.order_by("-version").first()


def policy_rebuild(experiment_id: int, *, until_version: int | None = None, from_start: bool = False) -> Rebuilt:
    """Replay the policy ledger up to ``until_version`` (default: all of it).

    From the latest checkpoint unless ``from_start``; replaying from version 0 needs the
    whole reward ledger and raises :class:`RebuildImpossible` once retention dropped any.
    """
    checkpoint = None if from_start else checkpoint_latest(experiment_id, until_version=until_version)
    if from_start and RetentionRun.objects.filter(experiment_id=experiment_id, rewards__gt=0).exists():
        raise RebuildImpossible("rewards were archived by retention; rebuild from the latest checkpoint instead")
    changes = PolicyChange.objects.filter(experiment_id=experiment_id).order_by("version")
    if until_version is not None:
        changes = changes.filter(version__lte=until_version)
    if checkpoint is None:
        pending_changes = list(changes)
        if not pending_changes or pending_changes[0].kind != "create":
            raise ValueError("policy ledger has no creation entry")
        create = pending_changes.pop(0).data
        policy = policies.make_policy(create["kind"], create["n_arms"], create["params"])
        version = applied_count = 0
        after_version = -1
    else:
        pending_changes = list(changes.filter(version__gt=checkpoint.version))
        policy = policies.policy_from_state(checkpoint.state)
        version, applied_count, after_version = checkpoint.version, checkpoint.applied_count, checkpoint.version

    positions = arm_positions(experiment_id)
    arms: list[int] = []
    values: list[float] = []

    def apply_rewards() -> None:
        if arms:
            policy.update(arms, values)
            arms.clear()
            values.clear()

    def apply_changes_before(limit: float) -> None:
        nonlocal policy, version
        while pending_changes and pending_changes[0].version < limit:
            apply_rewards()
            change = pending_changes.pop(0)
            version = max(version, change.version)
            if change.kind == "reconfigure":
                data = change.data
                fresh = policies.make_policy(data["kind"], policy.n_arms, data["params"], seed=data["seed"])
                replay_into(fresh, experiment_id, before_version=change.version)
                fresh.active_ = policy.active_.copy()
                fresh._invalidate()
                policy = fresh
            elif change.kind == "add_arm":
                policy.add_arm(**change.data["params"])
            elif change.kind == "exclude":
                policy.exclude(change.data["position"])
            elif change.kind == "include":
                policy.include(change.data["position"])

    for applied_version, arm_id, value, trials in ledger_rewards(
        experiment_id, after_version=after_version, until_version=until_version
    ):
        apply_changes_before(applied_version)
        learned_arms, learned_values = outcomes([positions[arm_id]], [value], [trials])
        arms += learned_arms
        values += learned_values
        applied_count += 1
        if len(arms) >= 100_000:  # batches equal one-by-one updates: chunking keeps memory flat
            apply_rewards()
        version = max(version, applied_version)
    apply_changes_before(math.inf)
    apply_rewards()
    return Rebuilt(policy, version, applied_count, None if checkpoint is None else checkpoint.version)


def policy_replace_with_rebuild(experiment_id: int) -> bool:
    """Overwrite the live state with the rebuilt one; return whether it differed."""
    with policy_session(experiment_id) as session:
        rebuilt = policy_rebuild(experiment_id)
        differed = not rebuilt.matches(session.state)
        session.replace(rebuilt.policy, rebuilt.version, rebuilt.applied_count)
    return differed
