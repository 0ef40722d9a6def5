"""One learning cycle: learn from pending rewards, then let the guardrails act — one transaction.

This is what the worker runs (``learning_cycle_task``). Learning and guardrails share one
:class:`~mabdash.experiments.services.learning.PolicySession`: an arm the guardrails roll
back is excluded under the lock the learner already holds, and the state is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from mabdash.control.services.guardrails import guardrails_check
from mabdash.experiments.services.learning import policy_session, snapshot_if_due


@dataclass(frozen=True)
class CycleResult:
    """What one cycle did."""

    applied: int
    versions: int
    more_pending: bool
    guardrail_actions: tuple[str, ...] = ()


def learning_cycle_run(experiment_id: int) -> CycleResult:
    """Learn from the experiment's pending rewards and run the guardrails (idempotent).

    Safe to run concurrently and to redeliver: rewards are claimed exactly once under the
    experiment's lock, so a second run finds nothing pending.
    """
    actions: list[str] = []
    with policy_session(experiment_id) as session:
        learned = session.learn_pending()
        if learned.applied:
            actions = guardrails_check(session, learned)
            # After a rollback, snapshot at once so the charts show the change.
            snapshot_if_due(experiment_id, session.policy, session.version, min_seconds=0 if actions else None)
    return CycleResult(learned.applied, learned.versions, learned.more_pending, tuple(actions))
