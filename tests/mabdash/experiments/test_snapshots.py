"""Local mode on the server: snapshots with signed draws, ETags, and reported decisions."""

from __future__ import annotations

from collections import Counter

import pytest

from mabdash.experiments import decision_ids
from mabdash.experiments.models import Arm, Decision
from mabdash.experiments.serving import serving_cache

pytestmark = pytest.mark.django_db


def test_a_snapshot_carries_the_allocation_and_signed_draws_from_it(api, experiment, client_key):
    response = api(client_key).get("/api/v1/experiments/churn/snapshot/?decisions=3000")
    assert response.status_code == 200
    body = response.json()
    assert response["ETag"] == body["etag"]
    shares = [arm["share"] for arm in body["arms"]]
    assert [arm["model"]["version"] for arm in body["arms"]] == ["1", "2", "3"]
    assert sum(shares) == pytest.approx(1.0)
    assert len(body["decisions"]) == 3000
    for drawn in body["decisions"][:50]:
        token = decision_ids.decode(drawn["decision_id"])
        assert (token.experiment_id, token.position) == (experiment.pk, drawn["arm"])
        assert token.propensity == pytest.approx(shares[drawn["arm"]], rel=1e-6)
    observed = Counter(drawn["arm"] for drawn in body["decisions"])
    for position, share in enumerate(shares):  # draws follow the allocation (binomial, 5 sd)
        assert abs(observed[position] / 3000 - share) <= 5 * (share * (1 - share) / 3000) ** 0.5 + 1e-9
    assert Decision.objects.count() == 0  # drawn is not served: only reported decisions enter the ledger


def test_an_unchanged_snapshot_answers_304_and_a_pin_changes_it(api, experiment, client_key, operator):
    from mabdash.control.services.actions import Actor, action_submit

    client = api(client_key)
    etag = client.get("/api/v1/experiments/churn/snapshot/")["ETag"]
    assert client.get("/api/v1/experiments/churn/snapshot/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    action_submit(experiment, "pin", {"arm": 1}, Actor.of(operator), reason="incident 7")
    serving_cache.clear()
    pinned = client.get("/api/v1/experiments/churn/snapshot/?decisions=20", HTTP_IF_NONE_MATCH=etag)
    assert pinned.status_code == 200 and pinned["ETag"] != etag
    body = pinned.json()
    assert (body["served_by"], [a["share"] for a in body["arms"]]) == ("pin", [0.0, 1.0, 0.0])
    assert {d["arm"] for d in body["decisions"]} == {1}


def test_a_process_whose_cache_lags_the_clients_snapshot_checks_before_answering(
    api, experiment, client_key, operator, settings
):
    """A client that already follows a pin asks with ``min_serving_version``: a web process
    that cached the allocation before the pin (and would keep it for its refresh period)
    reads the new one first, for decide and for the snapshot alike."""
    from mabdash.control.services.actions import Actor, action_submit

    settings.MABDASH = {**settings.MABDASH, "SERVING_REFRESH_SECONDS": 3600}
    serving_cache.clear()
    client = api(client_key)
    before = client.get("/api/v1/experiments/churn/snapshot/").json()
    action_submit(experiment, "pin", {"arm": 2}, Actor.of(operator), reason="incident 8")
    experiment.refresh_from_db()
    assert experiment.serving_version > before["serving_version"]
    lagging = client.post("/api/v1/experiments/churn/decide/").json()
    assert lagging["served_by"] == "policy"  # this process has not looked yet: the premise
    held = experiment.serving_version
    for _ in range(20):
        decided = client.post(f"/api/v1/experiments/churn/decide/?min_serving_version={held}").json()
        assert (decided["served_by"], decided["arm"]) == ("pin", 2)
    snapshot = client.get(f"/api/v1/experiments/churn/snapshot/?decisions=5&min_serving_version={held}").json()
    assert (snapshot["served_by"], snapshot["serving_version"]) == ("pin", held)
    assert {d["arm"] for d in snapshot["decisions"]} == {2}


@pytest.mark.parametrize("value", ["-1", "x", "1.5", "", "%C2%B2", "9" * 19, "%00"])
def test_a_bad_min_serving_version_is_refused_naming_the_field(api, experiment, client_key, value):
    client = api(client_key)
    for response in (
        client.get(f"/api/v1/experiments/churn/snapshot/?min_serving_version={value}"),
        client.post(f"/api/v1/experiments/churn/decide/?min_serving_version={value}"),
    ):
        assert response.status_code == 400
        assert response.json()["errors"] == {
            "min_serving_version": ["must be a non-negative integer (at most 18 digits)"]
        }


@pytest.mark.parametrize("value", ["-1", "10001", "x", "1.5", "", "%C2%B2", "%D9%A1", "9" * 400, "%00"])
def test_a_bad_number_of_decisions_is_refused_naming_the_field(api, experiment, client_key, value):
    response = api(client_key).get(f"/api/v1/experiments/churn/snapshot/?decisions={value}")
    assert response.status_code == 400
    assert response.json()["errors"] == {"decisions": ["must be an integer in [0, 10000]"]}


def test_reported_decisions_enter_the_ledger_once_and_foreign_ones_are_rejected(
    api, experiment, make_experiment, client_key, admin_key
):
    client = api(client_key)
    drawn = client.get("/api/v1/experiments/churn/snapshot/?decisions=5").json()["decisions"]
    other = make_experiment("other")
    foreign = api(admin_key).get("/api/v1/experiments/other/snapshot/?decisions=1").json()["decisions"][0]
    ids = [d["decision_id"] for d in drawn]
    body = {"decisions": [*ids[:3], ids[0], foreign["decision_id"], ids[1][:-2] + "xx", 7]}
    response = client.post("/api/v1/experiments/churn/decisions/", body, format="json")
    assert response.status_code == 200
    answer = response.json()
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (3, 1, 3)
    assert [r["status"] for r in answer["results"]] == [
        "accepted",
        "accepted",
        "accepted",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert answer["results"][4]["errors"] == {"decision_id": ["belongs to another experiment"]}
    assert answer["results"][6]["errors"] == {"decision_id": ["must be a decision id string (at most 100 characters)"]}
    again = client.post("/api/v1/experiments/churn/decisions/", {"decisions": ids}, format="json").json()
    assert (again["accepted"], again["duplicate"]) == (2, 3)
    assert Decision.objects.filter(experiment=experiment).count() == 5
    served = dict(Arm.objects.filter(experiment=experiment).values_list("position", "served_count"))
    assert served == {k: sum(d["arm"] == k for d in drawn) for k in range(3)}
    assert other.pk != experiment.pk


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "decisions"),
        ({"decisions": []}, 400, "decisions"),
        ({"decisions": "x"}, 400, "decisions"),
        ({"decisions": ["a"], "extra": 1}, 400, "extra"),
        ([1, 2], 400, "decisions"),
    ],
)
def test_a_bad_report_is_refused_naming_the_field(api, experiment, client_key, body, status, field):
    response = api(client_key).post("/api/v1/experiments/churn/decisions/", body, format="json")
    assert response.status_code == status
    assert field in response.json()["errors"]


def test_a_report_over_the_limit_is_too_large(api, experiment, client_key):
    response = api(client_key).post(
        "/api/v1/experiments/churn/decisions/", {"decisions": ["x"] * 10_001}, format="json"
    )
    assert response.status_code == 413


def test_a_key_of_another_experiment_gets_no_snapshot(api, experiment, make_experiment):
    from mabdash.accounts.services import api_key_create

    other = make_experiment("other")
    key = api_key_create(name="other-server", experiments=[other]).raw_key
    assert api(key).get("/api/v1/experiments/churn/snapshot/").status_code in (403, 404)
    assert api(key).post("/api/v1/experiments/churn/decisions/", {"decisions": ["a"]}, format="json").status_code in (
        403,
        404,
    )
