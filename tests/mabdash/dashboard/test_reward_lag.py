"""The experiment page's reward-lag figure: the latest rewards' lags and the share of recent
decisions still waiting, read from bounded windows of the ledgers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from mabdash.dashboard.selectors.experiment import WAITING_WINDOW, reward_lag
from mabdash.experiments.models import Decision, Reward
from mabdash.experiments.services.partitions import partitions_create

pytestmark = pytest.mark.django_db


def _decision(experiment, n: int, age: timedelta) -> Decision:
    return Decision.objects.create(
        decision_id=f"d-{n}",
        experiment=experiment,
        arm=experiment.arms.get(position=0),
        propensity=0.5,
        policy_version=1,
        served_by="policy",
        created_at=timezone.now() - age,
    )


def _reward(experiment, decision: Decision, lag_seconds: float) -> None:
    Reward.objects.create(
        event_id=f"e-{decision.decision_id}",
        experiment=experiment,
        arm=decision.arm,
        decision_id=decision.decision_id,
        value=1.0,
        decided_at=decision.created_at,
        received_at=decision.created_at + timedelta(seconds=lag_seconds),
    )


def test_waiting_share_counts_recent_decisions_only(experiment):
    now = timezone.now()
    rewarded = _decision(experiment, 1, timedelta(minutes=5))
    _reward(experiment, rewarded, 2.5)
    _decision(experiment, 2, timedelta(minutes=10))  # recent, no reward yet: waiting
    _decision(experiment, 3, timedelta(seconds=20))  # too young to be waiting
    _decision(experiment, 4, WAITING_WINDOW + timedelta(hours=1))  # not recent any more
    lags, waiting = reward_lag(experiment.pk, now)
    assert lags == [2.5]
    assert waiting == 0.5


def test_no_recent_decisions_means_no_waiting_share(experiment):
    _decision(experiment, 1, WAITING_WINDOW + timedelta(minutes=1))
    assert reward_lag(experiment.pk, timezone.now()) == ([], None)


@pytest.mark.postgres
def test_recent_decisions_are_read_newest_first_from_the_day_partitions(experiment):
    """The window lets PostgreSQL skip the default partition and older days, and read the
    index backwards, stopping at the sample size — not sort the whole ledger."""
    now = timezone.now()
    partitions_create((now - WAITING_WINDOW).date(), now.date())  # as beat makes them
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN SELECT decision_id FROM experiments_decision WHERE experiment_id = %s "
            "AND created_at <= %s AND created_at > %s ORDER BY created_at DESC LIMIT 2000",
            [experiment.pk, now - timedelta(minutes=1), now - WAITING_WINDOW],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "default" not in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.postgres
def test_the_waiting_share_reads_only_the_windows_days_of_the_reward_ledger(experiment):
    """A reward comes after its decision, so the lookup of the sampled decisions' rewards is
    bounded by the experiment and the sample's span: PostgreSQL reads only those days of the
    reward partitions, and in them only the experiment's rewards since the oldest decision
    (or, where the planner prefers, the sampled ids' entries of the decision-id index)."""
    from django.test.utils import CaptureQueriesContext

    from mabdash.experiments.services.partitions import REWARDS

    now = timezone.now()
    old_day = (now - WAITING_WINDOW - timedelta(days=3)).date()
    partitions_create(old_day, now.date(), REWARDS)
    _reward(experiment, _decision(experiment, 1, timedelta(minutes=5)), 2.0)
    with CaptureQueriesContext(connection) as queries:
        assert reward_lag(experiment.pk, now) == ([2.0], 0.0)
    (lookup,) = [q["sql"] for q in queries.captured_queries if '"decision_id" IN' in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {lookup}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"experiments_reward_p{now:%Y%m%d}" in plan, plan
    assert f"experiments_reward_p{old_day:%Y%m%d}" not in plan and "default" not in plan, plan
    assert f"(experiment_id = {experiment.pk})" in plan, plan
