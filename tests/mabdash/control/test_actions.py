"""Operator actions: each one, decide honours it at once, audited before and after."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from mabdash.accounts.authentication import principal_for_key
from mabdash.accounts.services import api_key_create
from mabdash.control.services.actions import Actor, action_submit, overrides_expire_due
from mabdash.errors import Conflict, Forbidden, InvalidInput
from mabdash.experiments.models import Arm, AuditEntry, Experiment, Override, PolicyState
from mabdash.experiments.services.decisions import decide
from mabdash.experiments.serving import serving_cache

pytestmark = pytest.mark.django_db


@pytest.fixture
def principal(client_key):
    return principal_for_key(client_key)


def decisions(principal, n=40):
    serving_cache.clear()
    return [decide("churn", principal) for _ in range(n)]


def act(experiment, operator, action, **params):
    reason = params.pop("reason", "")
    return action_submit(Experiment.objects.get(pk=experiment.pk), action, params, Actor.of(operator), reason=reason)


def test_pin_sends_every_request_to_the_pinned_arm_with_propensity_one(experiment, operator, principal):
    outcome = act(experiment, operator, "pin", arm=2, reason="incident 7")
    assert outcome.outcome == "applied" and outcome.after["override"]["kind"] == "pin"
    served = decisions(principal)
    assert {(d.arm, d.propensity, d.served_by) for d in served} == {(2, 1.0, "pin")}
    entry = AuditEntry.objects.get(kind="override.pin")
    assert (entry.actor, entry.reason, entry.before["override"], entry.after["override"]["position"]) == (
        "olivia",
        "incident 7",
        None,
        2,
    )


def test_pin_expires_on_time_without_any_process(experiment, operator, principal):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        act(experiment, operator, "pin", arm=2, expires_in_minutes=30)
        assert {d.served_by for d in decisions(principal, 5)} == {"pin"}
    with time_machine.travel(start + timedelta(minutes=29), tick=False):
        assert {d.arm for d in decisions(principal, 5)} == {2}
    with time_machine.travel(start + timedelta(minutes=31), tick=False):
        assert {d.served_by for d in decisions(principal, 5)} == {"policy"}  # decide stops at once
        assert overrides_expire_due() == 1  # beat records the expiry
    override = Override.objects.get()
    assert override.end_reason == "expired"
    assert AuditEntry.objects.filter(kind="override.expired").count() == 1


def test_manual_weights_replace_the_split_and_are_logged_with_their_propensity(experiment, operator, principal):
    act(experiment, operator, "weights", weights=[3, 1, 0], expires_in_minutes=60)
    served = decisions(principal, 400)
    assert {d.served_by for d in served} == {"weights"}
    assert {(d.arm, d.propensity) for d in served} == {(0, 0.75), (1, 0.25)}
    assert 250 < sum(d.arm == 0 for d in served) < 350
    act(experiment, operator, "clear_override")
    assert {d.served_by for d in decisions(principal, 5)} == {"policy"}


def test_a_new_override_replaces_the_previous_one(experiment, operator):
    act(experiment, operator, "pin", arm=0)
    act(experiment, operator, "pin", arm=1)
    assert [(o.position, o.end_reason) for o in Override.objects.order_by("id")] == [(0, "replaced"), (1, "")]


@pytest.mark.parametrize(("action", "status"), [("pause_arm", "paused"), ("rollback_arm", "rolled_back")])
def test_pausing_or_rolling_back_an_arm_takes_it_out_of_traffic_and_restore_brings_it_back(
    experiment, operator, principal, action, status
):
    act(experiment, operator, action, arm=1, reason="bad model")
    assert Arm.objects.get(experiment=experiment, position=1).status == status
    state = PolicyState.objects.get(experiment=experiment)
    assert state.state["active"] == [True, False, True] and state.allocation[1] == 0.0
    assert 1 not in {d.arm for d in decisions(principal, 200)}
    act(experiment, operator, "restore_arm", arm=1)
    assert Arm.objects.get(experiment=experiment, position=1).status == "active"
    assert PolicyState.objects.get(experiment=experiment).state["active"] == [True, True, True]


def test_a_rollback_needs_a_reason_and_the_last_active_arm_stays(experiment, operator):
    with pytest.raises(InvalidInput) as caught:
        act(experiment, operator, "rollback_arm", arm=0)
    assert caught.value.errors == {"reason": ["say why the arm is rolled back"]}
    act(experiment, operator, "pause_arm", arm=0)
    act(experiment, operator, "pause_arm", arm=1)
    with pytest.raises(Conflict) as caught:
        act(experiment, operator, "rollback_arm", arm=2, reason="x")
    assert caught.value.errors == {"arm": ["arm 2 is the last active arm; restore another arm first"]}


def test_pausing_the_pinned_arm_ends_the_pin(experiment, operator, principal):
    act(experiment, operator, "pin", arm=1)
    act(experiment, operator, "pause_arm", arm=1)
    assert Override.objects.get().end_reason == "arm excluded"
    assert 1 not in {d.arm for d in decisions(principal, 100)}


def test_experiment_pause_resume_stop(experiment, operator, principal):
    act(experiment, operator, "pause")
    assert {(d.arm, d.served_by) for d in decisions(principal, 5)} == {(0, "default")}
    act(experiment, operator, "resume")
    act(experiment, operator, "stop")
    assert Experiment.objects.get(pk=experiment.pk).status == "stopped"


def test_promote_stops_learning_and_serves_the_winner(experiment, operator, principal):
    act(experiment, operator, "promote", arm=2, reason="clear winner")
    promoted = Experiment.objects.get(pk=experiment.pk)
    assert (promoted.status, promoted.default_position) == ("stopped", 2)
    assert {(d.arm, d.propensity, d.served_by) for d in decisions(principal, 10)} == {(2, 1.0, "default")}
    assert AuditEntry.objects.get(kind="experiment.promoted").after["default_arm"] == 2


@pytest.mark.parametrize(
    ("action", "params", "errors"),
    [
        (
            "explode",
            {},
            {
                "action": [
                    "must be one of pin, pause_arm, rollback_arm, restore_arm, promote, weights, clear_override, "
                    "pause, resume, stop, add_arm, settings, archive"
                ]
            },
        ),
        ("pin", {}, {"arm": ["must be an arm position in [0, 3)"]}),
        ("pin", {"arm": 3}, {"arm": ["must be an arm position in [0, 3)"]}),
        ("pin", {"arm": 0, "expires_in_minutes": -5}, {"expires_in_minutes": ["must be a number in (0, 525600]"]}),
        ("weights", {"weights": [1, 2]}, {"weights": ["must be a list of 3 numbers, one per arm"]}),
        ("weights", {"weights": [1, -1, 0]}, {"weights": ["every weight must be a finite number ≥ 0"]}),
        ("weights", {"weights": [0, 0, 0]}, {"weights": ["the weights must have a positive, finite sum"]}),
        ("weights", {"weights": [1e308, 1e308, 0]}, {"weights": ["the weights must have a positive, finite sum"]}),
        ("weights", {"weights": [float("inf"), 1, 0]}, {"weights": ["every weight must be a finite number ≥ 0"]}),
        ("weights", {"weights": ["1", 1, 0]}, {"weights": ["every weight must be a number"]}),
        ("pin", {"arm": 0, "reason": "x" * 1001}, {"reason": ["at most 1,000 characters (got 1,001)"]}),
    ],
)
def test_bad_action_input_names_the_field(experiment, operator, action, params, errors):
    with pytest.raises(InvalidInput) as caught:
        act(experiment, operator, action, **params)
    assert caught.value.errors == errors


def test_conflicting_actions_say_why(experiment, operator):
    with pytest.raises(Conflict) as caught:
        act(experiment, operator, "clear_override")
    assert caught.value.errors == {"action": ["there is no active pin or weights to clear"]}
    with pytest.raises(Conflict) as caught:
        act(experiment, operator, "restore_arm", arm=0)
    assert caught.value.errors == {"arm": ["arm 0 is already active"]}
    act(experiment, operator, "pause_arm", arm=0)
    with pytest.raises(Conflict) as caught:
        act(experiment, operator, "pin", arm=0)
    assert caught.value.errors == {"arm": ["arm 0 is paused; restore it first"]}


def test_another_persons_change_makes_an_action_stale_and_names_it(experiment, operator):
    seen = experiment.control_version
    act(experiment, operator, "pin", arm=0)
    with pytest.raises(Conflict) as caught:
        action_submit(experiment, "pin", {"arm": 1}, Actor.of(operator), expected_version=seen)
    assert caught.value.errors == {
        "expected_version": [
            "someone changed this experiment since you loaded it (Pinned churn:1 (arm #0) until cleared: it gets all "
            "traffic — olivia); reload to see the change and act again (control version 1, now 2)"
        ]
    }


def test_learning_never_makes_an_action_stale(experiment, operator, client_key):
    from mabdash.accounts.authentication import principal_for_key
    from mabdash.control.services.learning_cycle import learning_cycle_run
    from mabdash.experiments.services.rewards import rewards_record

    seen = Experiment.objects.get(pk=experiment.pk).control_version
    principal = principal_for_key(client_key)
    for batch in range(20):  # many learning batches: the serving version moves, the control version not
        rewards_record([{"experiment": "churn", "arm": i % 3, "value": (i + batch) % 2} for i in range(30)], principal)
        learning_cycle_run(experiment.pk)
    moved = Experiment.objects.get(pk=experiment.pk)
    assert moved.serving_version >= experiment.serving_version + 20 and moved.control_version == seen
    for action, params in (("pin", {"arm": 1}), ("weights", {"weights": [1, 3, 0]}), ("pause", {}), ("resume", {})):
        outcome = action_submit(moved, action, params, Actor.of(operator), expected_version=seen)
        assert outcome.outcome == "applied"
        seen += 1  # our own action moves it; the page that made it reloads


def test_viewers_and_client_keys_cannot_act(experiment, viewer, principal):
    for actor in (Actor.of(viewer), Actor.of(principal)):
        with pytest.raises(Forbidden):
            action_submit(experiment, "pause", {}, actor)
    automation = principal_for_key(api_key_create(name="ops-bot", role="admin", all_experiments=True).raw_key)
    assert action_submit(experiment, "pause", {}, Actor.of(automation)).outcome == "applied"
