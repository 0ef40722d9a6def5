"""Event ids the server makes for rewards sent without one: UUIDv7 layout, time-ordered."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest

from mabdash.experiments import event_ids
from mabdash.experiments.event_ids import time_ordered_id
from mabdash.experiments.models import Reward
from mabdash.experiments.services.rewards import rewards_record


def test_a_generated_id_is_a_version_7_uuid_carrying_the_millisecond():
    with mock.patch.object(event_ids.time, "time_ns", return_value=1_796_236_800_123_456_789):
        made = time_ordered_id()
    parsed = uuid.UUID(made)
    assert (len(made), made, parsed.version, parsed.variant) == (32, made.lower(), 7, uuid.RFC_4122)
    assert int(made[:12], 16) == 1_796_236_800_123  # the first 48 bits: Unix time in ms


def test_later_ids_sort_later_and_ids_do_not_repeat():
    times = iter(range(1_796_236_800_000_000_000, 1_796_236_900_000_000_000, 1_000_000))  # 1 ms apart
    with mock.patch.object(event_ids.time, "time_ns", side_effect=lambda: next(times)):
        made = [time_ordered_id() for _ in range(2000)]
    assert made == sorted(made)
    made_quickly = [time_ordered_id() for _ in range(2000)]
    assert len(set(made + made_quickly)) == 4000


@pytest.mark.django_db
def test_a_reward_sent_without_an_id_gets_a_time_ordered_one(experiment, client_key):
    from mabdash.accounts.authentication import principal_for_key

    principal = principal_for_key(client_key)
    (outcome,) = rewards_record([{"experiment": experiment.slug, "arm": 0, "value": 1}], principal)
    assert outcome.status == "accepted"
    stored = Reward.objects.get(experiment=experiment)
    assert uuid.UUID(stored.event_id).version == 7 and stored.event_id == outcome.event_id
