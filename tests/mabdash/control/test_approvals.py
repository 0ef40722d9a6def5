"""Four-eyes requests and automatic-rollback proposals: who may decide, when, exactly once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from mabdash.control.models import ActionRequest
from mabdash.control.services.actions import SYSTEM, Actor, action_submit, request_create
from mabdash.control.services.approvals import proposals_apply_due, request_decide, requests_expire_due
from mabdash.errors import Conflict, Forbidden
from mabdash.experiments.models import Arm, AuditEntry, Experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def four_eyes(make_experiment):
    return make_experiment("guarded", approval_mode="four_eyes")


def test_under_four_eyes_an_action_becomes_a_request(four_eyes, operator):
    outcome = action_submit(four_eyes, "pin", {"arm": 1}, Actor.of(operator), reason="canary")
    assert outcome.outcome == "requested"
    request = outcome.request
    assert (request.status, request.mode, request.requested_by, request.params) == (
        "pending",
        "four_eyes",
        "olivia",
        {"arm": 1},
    )
    assert request.expires_at is not None
    assert AuditEntry.objects.filter(kind="approval.requested").count() == 1
    assert not four_eyes.overrides.exists()  # nothing changed yet


def test_nobody_approves_their_own_request(four_eyes):
    from django.contrib.auth.models import Group

    from mabdash.accounts.services import user_create

    both = user_create(username="bo", password="pw-bo-1234567", role="operator")
    both.groups.add(Group.objects.get(name="approver"))  # operator and approver at once
    request = action_submit(four_eyes, "pause", {}, Actor.of(both)).request
    with pytest.raises(Forbidden) as caught:
        request_decide(request.pk, True, Actor.of(both))
    assert caught.value.errors == {"request": ["you cannot approve or reject your own request; another approver must"]}
    assert ActionRequest.objects.get(pk=request.pk).status == "pending"


def test_a_second_user_with_the_approver_role_approves_and_the_action_happens(four_eyes, operator, approver):
    request = action_submit(four_eyes, "pin", {"arm": 2}, Actor.of(operator), reason="hotfix").request
    with pytest.raises(Forbidden):
        request_decide(request.pk, True, Actor.of(operator))  # operators are not approvers
    decided = request_decide(request.pk, True, Actor.of(approver), reason="looks right")
    assert (decided.status, decided.decided_by) == ("applied", "ana")
    assert four_eyes.overrides.get().position == 2
    pin = AuditEntry.objects.get(kind="override.pin")
    assert pin.actor == "olivia, approved by ana" and pin.evidence["request"] == request.pk
    with pytest.raises(Conflict) as caught:
        request_decide(request.pk, False, Actor.of(approver))
    assert caught.value.errors == {"request": [f"request {request.pk} is already applied by ana"]}


def test_rejected_requests_change_nothing(four_eyes, operator, approver):
    request = action_submit(four_eyes, "stop", {}, Actor.of(operator)).request
    assert request_decide(request.pk, False, Actor.of(approver), reason="no").status == "rejected"
    assert Experiment.objects.get(pk=four_eyes.pk).status == "running"


def test_pending_requests_expire(four_eyes, operator, approver):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        request = action_submit(four_eyes, "stop", {}, Actor.of(operator)).request
    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        with pytest.raises(Conflict) as caught:
            request_decide(request.pk, True, Actor.of(approver))
        assert "expired" in caught.value.message
    assert ActionRequest.objects.get(pk=request.pk).status == "expired"
    other = action_submit(four_eyes, "pause", {}, Actor.of(operator)).request
    with time_machine.travel(timezone.now() + timedelta(minutes=61), tick=False):
        assert requests_expire_due() == 1
    assert ActionRequest.objects.get(pk=other.pk).status == "expired"


def test_an_approved_request_that_no_longer_fits_fails_with_the_reason(four_eyes, operator, approver):
    request = action_submit(four_eyes, "pin", {"arm": 1}, Actor.of(operator)).request
    Arm.objects.filter(experiment=four_eyes, position=1).update(status="paused")
    decided = request_decide(request.pk, True, Actor.of(approver))
    assert (decided.status, decided.outcome) == ("failed", "arm: arm 1 is paused; restore it first")


def test_veto_window_applies_an_unvetoed_proposal_when_the_window_ends(make_experiment, approver):
    experiment = make_experiment("vetoable", rollback_mode="veto_window", guardrails={"veto_minutes": 10})
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        proposal = request_create(
            experiment,
            "rollback_arm",
            {"arm": 1},
            ActionRequest.Mode.VETO_WINDOW,
            requested_by=SYSTEM,
            reason="detector fired",
        )
        vetoed = request_create(
            experiment,
            "rollback_arm",
            {"arm": 2},
            ActionRequest.Mode.VETO_WINDOW,
            requested_by=SYSTEM,
            reason="detector fired",
        )
    assert proposal.apply_at == start + timedelta(minutes=10) and proposal.expires_at is None
    request_decide(vetoed.pk, False, Actor.of(approver), reason="false alarm")
    with time_machine.travel(start + timedelta(minutes=9), tick=False):
        assert proposals_apply_due() == 0
    with time_machine.travel(start + timedelta(minutes=11), tick=False):
        assert proposals_apply_due() == 1
    assert ActionRequest.objects.get(pk=proposal.pk).status == "applied"
    assert ActionRequest.objects.get(pk=vetoed.pk).status == "rejected"
    statuses = dict(Arm.objects.filter(experiment=experiment).values_list("position", "status"))
    assert statuses == {0: "active", 1: "rolled_back", 2: "active"}
    assert AuditEntry.objects.filter(kind="rollback.vetoed").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_produce_exactly_one_outcome(four_eyes, operator, approver, second_approver):
    request = action_submit(four_eyes, "pin", {"arm": 2}, Actor.of(operator)).request
    results: list[str] = []
    barrier = threading.Barrier(2)

    def decide(user, approve):
        try:
            barrier.wait()
            results.append(request_decide(request.pk, approve, Actor.of(user)).status)
        except Conflict as error:
            results.append(f"conflict: {error.message}")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=(approver, True)),
        threading.Thread(target=decide, args=(second_approver, False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.split(":")[0] for r in results) in (["applied", "conflict"], ["conflict", "rejected"])
    final = ActionRequest.objects.get(pk=request.pk)
    assert final.status in ("applied", "rejected")
    assert four_eyes.overrides.count() == (1 if final.status == "applied" else 0)
