"""Dashboard pages and data endpoints: permissions, shapes, downsampling, audit export."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from mabdash.accounts.authentication import principal_for_key
from mabdash.control.services.actions import Actor, action_submit
from mabdash.control.services.learning_cycle import learning_cycle_run
from mabdash.dashboard.selectors import snapshots
from mabdash.experiments.models import AllocationSnapshot, AuditEntry, Experiment
from mabdash.experiments.services.decision_log import decision_buffer
from mabdash.experiments.services.decisions import decide
from mabdash.experiments.services.experiments import experiment_set_status
from mabdash.experiments.services.rewards import rewards_record

pytestmark = pytest.mark.django_db

PAGES = ["/", "/experiments/churn/", "/models/", "/audit/"]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def traffic(experiment, client_key):
    """Some decisions and rewards, learned."""
    principal = principal_for_key(client_key)
    decisions = [decide("churn", principal) for _ in range(20)]
    decision_buffer.flush()
    rewards_record([{"decision_id": d.decision_id, "value": float(d.arm == 1)} for d in decisions], principal)
    learning_cycle_run(experiment.pk)
    return decisions


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(client, experiment, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"] == f"/login/?next={path}"


def test_data_endpoint_answers_anonymous_users_with_json_401(client, experiment):
    response = client.get("/experiments/churn/data/")
    assert response.status_code == 401 and response.json() == {"detail": "Log in to see dashboard data.", "errors": {}}


def test_users_without_a_role_get_403(experiment, django_user_model):
    nobody = logged_in(django_user_model.objects.create_user("nobody", password="pw"))
    assert nobody.get("/").status_code == 403
    assert nobody.get("/experiments/churn/data/").status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_viewers_see_every_page(viewer, traffic, path):
    assert logged_in(viewer).get(path).status_code == 200


def test_overview_lists_experiments_with_their_numbers(viewer, traffic):
    response = logged_in(viewer).get("/")
    (row,) = response.context["rows"]
    assert row["experiment"].slug == "churn"
    assert (row["decisions_last_hour"], row["rewards_last_hour"]) == (20, 20)
    assert row["leader"].startswith("#") and 0 < row["leader_share"] <= 1
    assert row["alerts"] == []
    assert [t["name"] for t in row["sparkline"]["data"]] == ["#0 churn:1", "#1 churn:2", "#2 churn:3"]


def test_detail_data_has_every_figure_and_the_arms_table(viewer, traffic):
    data = logged_in(viewer).get("/experiments/churn/data/").json()
    assert set(data["figures"]) == {"allocation", "means", "cumulative", "belief", "probability_best", "traffic", "lag"}
    assert [arm["served"] for arm in data["state"]["arms"]] == [sum(d.arm == k for d in traffic) for k in range(3)]
    assert sum(arm["rewards"] for arm in data["state"]["arms"]) == 20
    allocation = data["figures"]["allocation"]["data"]
    # One snapshot (from the apply) plus the live point; the last point is the live allocation.
    assert [trace["y"][-1] for trace in allocation[:3]] == [arm["allocation"] for arm in data["state"]["arms"]]
    assert data["figures"]["belief"]["layout"]["title"]["text"].endswith("(Beta posterior)")
    assert data["waiting_share"] is None  # decisions younger than a minute are not waiting yet
    assert data["has_data"] is True
    assert data["history_version"] == AuditEntry.objects.latest("id").pk
    assert data["control_version"] == Experiment.objects.get(slug="churn").control_version


def test_detail_data_rejects_an_unknown_range(viewer, experiment):
    response = logged_in(viewer).get("/experiments/churn/data/?range=forever")
    assert response.status_code == 400 and response.json()["errors"] == {
        "range": ["must be one of 1h, 24h, 7d, 30d, all"]
    }
    assert logged_in(viewer).get("/experiments/none/data/").status_code == 404


def test_long_histories_are_downsampled_on_the_server(viewer, experiment):
    start = timezone.now() - timedelta(days=3) + timedelta(seconds=30)  # no snapshot near the 1 h edge
    AllocationSnapshot.objects.bulk_create(
        AllocationSnapshot.build(
            experiment_id=experiment.pk,
            created_at=start + timedelta(minutes=i),
            policy_version=i,
            allocation=[0.2, 0.3, 0.5],
            effective=[0.2, 0.3, 0.5],
            served=[i, i, i],
            reward_counts=[i, i, i],
            reward_sums=[0, 0, 0],
            means=[0.1, 0.2, 0.3],
            lower=[0.0, 0.1, 0.2],
            upper=[0.2, 0.3, 0.4],
        )
        for i in range(3 * 24 * 60)
    )
    data = logged_in(viewer).get("/experiments/churn/data/").json()
    x = data["figures"]["allocation"]["data"][0]["x"]
    assert len(x) == snapshots.MAX_POINTS + 1  # downsampled, plus the live point
    assert x[0] == start.isoformat().replace("+00:00", "Z")
    day = logged_in(viewer).get("/experiments/churn/data/?range=24h").json()
    assert len(day["figures"]["allocation"]["data"][0]["x"]) == snapshots.MAX_POINTS + 1
    hour = logged_in(viewer).get("/experiments/churn/data/?range=1h").json()
    # The last hour: 60 minutely snapshots, the one taken at creation, and the live point.
    assert len(hour["figures"]["allocation"]["data"][0]["x"]) == 60 + 1 + 1


def test_downsampling_keeps_the_ends_and_spreads_evenly_in_time(experiment):
    AllocationSnapshot.objects.all().delete()
    start = timezone.now() - timedelta(days=1)
    AllocationSnapshot.objects.bulk_create(
        AllocationSnapshot.build(
            experiment_id=experiment.pk,
            created_at=start + timedelta(minutes=i),
            policy_version=i,
            allocation=[1, 0, 0],
            effective=[1, 0, 0],
            served=[0] * 3,
            reward_counts=[0] * 3,
            reward_sums=[0] * 3,
            means=[None] * 3,
            lower=[None] * 3,
            upper=[None] * 3,
        )
        for i in range(1001)
    )
    picked = [p["policy_version"] for p in snapshots.snapshot_series(experiment.pk, None, max_points=5)]
    assert picked == [0, 250, 500, 750, 1000]
    assert len(snapshots.snapshot_series(experiment.pk, None, max_points=2000)) == 1001
    assert snapshots.snapshot_series(experiment.pk, timezone.now(), max_points=5) == []


def test_operators_act_from_the_page_and_viewers_cannot(operator, viewer, experiment):
    page = logged_in(viewer).get("/experiments/churn/")
    assert page.context["can_act"] is False and b"data-action=" not in page.content
    assert logged_in(viewer).post("/experiments/churn/actions/", {"action": "pause"}).status_code == 403
    page = logged_in(operator).get("/experiments/churn/")
    for action in ("pin", "pause_arm", "rollback_arm", "restore_arm", "promote", "weights", "status-paused", "archive"):
        assert f'data-action="{action}"'.encode() in page.content
    response = logged_in(operator).post(
        "/experiments/churn/actions/",
        {"action": "pause", "reason": "deploy freeze", "expected_version": experiment.control_version},
    )
    assert response.status_code == 302
    assert Experiment.objects.get(slug="churn").status == "paused"
    entry = AuditEntry.objects.get(kind="experiment.status")
    assert (entry.actor, entry.reason, entry.summary) == ("olivia", "deploy freeze", "Paused the experiment")


def test_dashboard_posts_require_csrf(operator, experiment):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post("/experiments/churn/actions/", {"action": "pause"}).status_code == 403
    assert Experiment.objects.get(slug="churn").status == "running"


def test_acting_on_stale_state_shows_who_changed_what_and_keeps_what_was_typed(operator, experiment, django_user_model):
    stale = experiment.control_version
    rita = django_user_model.objects.create(username="rita", is_superuser=True)
    action_submit(experiment, "pause", {}, Actor.of(rita), reason="night freeze")
    response = logged_in(operator).post(
        "/experiments/churn/actions/",
        {"action": "pin", "arm": "2", "reason": "canary for model 3", "expected_version": stale},
    )
    assert response.status_code == 409
    assert response.context["errors"] == {
        "expected_version": [
            "someone changed this experiment since you loaded it (Paused the experiment — rita); reload to see the "
            f"change and act again (control version {stale}, now {stale + 1})"
        ]
    }
    # What the operator typed is still there.
    assert response.context["values"] == {"arm": "2", "expires_in_minutes": "", "reason": "canary for model 3"}
    assert b'value="canary for model 3"' in response.content and b'<option value="2" selected>' in response.content
    assert Experiment.objects.get(slug="churn").status == "paused"


def test_an_invalid_status_change_shows_a_message(operator, experiment):
    experiment_set_status(experiment, "stopped")
    response = logged_in(operator).post("/experiments/churn/actions/", {"action": "resume"})
    assert response.status_code == 409
    assert response.context["errors"] == {"status": ["cannot go from stopped to running"]}


def test_model_pages(viewer, traffic, model_versions):
    assert [m.pk for m in logged_in(viewer).get("/models/").context["page"].object_list] == [
        m.pk for m in sorted(model_versions, key=lambda m: -m.pk)
    ]
    detail = logged_in(viewer).get(f"/models/{model_versions[1].pk}/")
    assert [arm.experiment.slug for arm in detail.context["arms"]] == ["churn"]
    (series,) = detail.context["figure"]["data"]
    assert series["name"] == "churn" and len(series["y"]) == 1


def test_audit_log_filters_and_exports_csv(viewer, operator, experiment):
    action_submit(experiment, "pause", {}, Actor.of(operator), reason="incident")
    client = logged_in(viewer)
    everything = client.get("/audit/").context["page"].object_list
    assert [e.kind for e in everything] == [
        "experiment.status",
        "experiment.created",
        "model.registered",
        "model.registered",
        "model.registered",
    ]
    filtered = client.get("/audit/?experiment=churn&kind=experiment.status&actor=olivia").context["page"].object_list
    assert [(e.kind, e.reason) for e in filtered] == [("experiment.status", "incident")]
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert list(client.get(f"/audit/?since={tomorrow}").context["page"].object_list) == []
    bad = client.get("/audit/?since=yesterday")
    assert bad.status_code == 400 and bad.context["errors"] == {
        "since": "use a date (2026-11-28) or date-time (2026-11-28T09:30)"
    }
    export = client.get("/audit/?kind=experiment.status&format=csv")
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0] == ["time", "experiment", "actor", "kind", "summary", "reason", "before", "after", "evidence"]
    assert rows[1][1:6] == ["churn", "olivia", "experiment.status", "Paused the experiment", "incident"]
    assert json.loads(rows[1][6])["status"] == "running" and json.loads(rows[1][7])["status"] == "paused"
    # The page shows the same entries as cards: a sentence, the change in words, the JSON evidence.
    page = client.get("/audit/?kind=experiment.status").content.decode()
    assert "Paused the experiment" in page and "status: running → paused" in page
    assert "True" not in page and "None" not in page and "&quot;status&quot;: &quot;paused&quot;" in page


def _learn(experiment, client_key, means, n, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    items = [
        {"experiment": experiment.slug, "arm": arm, "value": float(rng.random() < mean)}
        for _ in range(n)
        for arm, mean in enumerate(means)
    ]
    rewards_record(items, principal_for_key(client_key))
    learning_cycle_run(experiment.pk)


def test_a_proven_winner_is_suggested_for_promotion_and_equal_arms_are_not(operator, experiment, client_key):
    # The relative and shortfall rules would roll the worse arms back before a winner is shown.
    Experiment.objects.filter(pk=experiment.pk).update(
        guardrails={"enabled": True, "relative": {"enabled": False}, "shortfall": {"enabled": False}}
    )
    experiment.refresh_from_db()
    _learn(experiment, client_key, [0.5, 0.5, 0.5], 300, seed=1)
    page = logged_in(operator).get("/experiments/churn/").content.decode()
    assert "data-winner" not in page
    _learn(experiment, client_key, [0.5, 0.95, 0.5], 700, seed=2)
    page = logged_in(operator).get("/experiments/churn/").content.decode()
    assert 'data-winner="1"' in page and 'data-action="promote-suggested"' in page
    assert "is better than every other active arm with 99.5% confidence, valid however often it is checked" in page
