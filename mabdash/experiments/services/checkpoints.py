"""Checkpoints of the policy state, each proven against the ledger before it is written.

A checkpoint is the live state at one ledger version. It is written only after the rebuild
from the previous checkpoint (or from version 0) through that version reproduced it exactly,
so a chain of checkpoints carries the proof forward when retention archives the ledger
behind it. Taken by retention before it drops anything, and by beat once an experiment has
learned ``CHECKPOINT_EVERY_REWARDS`` rewards since its last one, so the rebuild's cost stays
bounded however old the experiment is.

No lock is needed: every ledger row at or below a committed version is final (learning
commits a version's rewards and its state in one transaction), so the checkpoint of a
version read from ``PolicyState`` is history, whatever learning does meanwhile.
"""

from __future__ import annotations

from django.conf import settings

from mabdash.experiments.models import PolicyCheckpoint, PolicyState
from mabdash.experiments.services.rebuild import checkpoint_latest, policy_rebuild


class CheckpointRefused(Exception):
    """The live state is not what the ledger rebuilds: no checkpoint, nothing may be dropped."""


def checkpoint_take(experiment_id: int, *, reason: str) -> PolicyCheckpoint:
    """Checkpoint the live state at its current version; idempotent per version.

    Raises :class:`CheckpointRefused` when the rebuild through that version differs.
    """
    live = PolicyState.objects.get(experiment_id=experiment_id)
    existing = PolicyCheckpoint.objects.filter(experiment_id=experiment_id, version=live.version).first()
    if existing is not None:
        return existing
    rebuilt = policy_rebuild(experiment_id, until_version=live.version)
    if not rebuilt.matches(live) or rebuilt.applied_count != live.applied_count:
        raise CheckpointRefused(
            f"the live state at version {live.version} ({live.applied_count} rewards) differs from the ledger's "
            f"rebuild (version {rebuilt.version}, {rebuilt.applied_count} rewards); run rebuild_policy_state"
        )
    checkpoint, _ = PolicyCheckpoint.objects.get_or_create(
        experiment_id=experiment_id,
        version=live.version,
        defaults={"state": live.state, "applied_count": live.applied_count, "reason": reason},
    )
    return checkpoint


def checkpoints_due() -> list[int]:
    """Experiments that learned at least ``CHECKPOINT_EVERY_REWARDS`` rewards since their last checkpoint."""
    every = settings.MABDASH["CHECKPOINT_EVERY_REWARDS"]
    due = []
    for experiment_id, applied in PolicyState.objects.filter(applied_count__gte=every).values_list(
        "experiment_id", "applied_count"
    ):
        latest = checkpoint_latest(experiment_id)
        if applied - (latest.applied_count if latest else 0) >= every:
            due.append(experiment_id)
    return due


def checkpoints_take_due() -> int:
    """Checkpoint every experiment that is due; return how many were taken."""
    taken = 0
    for experiment_id in checkpoints_due():
        checkpoint_take(experiment_id, reason="periodic")
        taken += 1
    return taken
