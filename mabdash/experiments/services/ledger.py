"""Reading the reward ledger in the order the live learner applied it.

Shared by learning (a strategy switch re-learns the ledger) and the rebuild. After a
retention run the ledger starts at the experiment's latest checkpoint: rewards the
checkpoint covers may have been archived and dropped.
"""

from __future__ import annotations

from collections.abc import Iterator

import policies
from mabdash.experiments.models import Arm, Reward


def outcomes(arms: list[int], values: list[float], trials: list[int]) -> tuple[list[int], list[float]]:
    """The rewards as the policy learns them: a count reward (``trials`` > 1, ``value``
    successes) becomes its ``trials`` 0/1 outcomes, with the successes spread evenly
    (outcome i is 1 when ⌊(i+1)s/n⌋ > ⌊is/n⌋) so no detector mistakes a count for a run of
    failures. Deterministic, so the rebuild learns exactly what the live learner did."""
    if all(n == 1 for n in trials):
        return arms, values
    out_arms: list[int] = []
    out_values: list[float] = []
    for arm, value, n in zip(arms, values, trials, strict=True):
        if n == 1:
            out_arms.append(arm)
            out_values.append(value)
            continue
        successes = round(value)
        out_arms += [arm] * n
        out_values += [float((i + 1) * successes // n - i * successes // n) for i in range(n)]
    return out_arms, out_values


def ledger_rewards(
    experiment_id: int, *, after_version: int = -1, until_version: int | None = None
) -> Iterator[tuple[int, int, float, int]]:
    """Learned rewards as (applied version, arm id, value, trials), in ledger order.

    Only versions in (``after_version``, ``until_version``]: the range is what the index
    on (experiment, applied version, id) serves, so a rebuild from a recent checkpoint reads
    only the ledger since it.
    """
    rows = Reward.objects.filter(experiment_id=experiment_id, applied_version__gt=after_version)
    if until_version is not None:
        rows = rows.filter(applied_version__lte=until_version)
    for version, arm_id, value, trials in (
        rows.order_by("applied_version", "id")
        .values_list("applied_version", "arm_id", "value", "trials")
        .iterator(chunk_size=20_000)
    ):
        assert version is not None  # the range excludes pending rewards
        yield version, arm_id, value, trials


def arm_positions(experiment_id: int) -> dict[int, int]:
    """Arm id → position."""
    return dict(Arm.objects.filter(experiment_id=experiment_id).values_list("id", "position"))


def replay_into(policy: policies.Policy, experiment_id: int, before_version: int) -> None:
    """Teach ``policy`` every reward still in the ledger learned at versions below ``before_version``, in order."""
    positions = arm_positions(experiment_id)
    arms: list[int] = []
    values: list[float] = []
    for _, arm_id, value, trials in ledger_rewards(experiment_id, until_version=before_version - 1):
        learned_arms, learned_values = outcomes([positions[arm_id]], [value], [trials])
        arms += learned_arms
        values += learned_values
        if len(arms) >= 100_000:  # chunks: batches equal one-by-one updates, so this is exact
            policy.update(arms, values)
            arms, values = [], []
    policy.update(arms, values)
