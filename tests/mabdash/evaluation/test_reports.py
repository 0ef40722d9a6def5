"""Counterfactual reports in the platform: the ledger as a log, one report at a time, the API,
the management command, and recovery of lost or stuck reports."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from mabdash.accounts.authentication import principal_for_key
from mabdash.evaluation.models import CounterfactualReport
from mabdash.evaluation.services import reports
from mabdash.evaluation.services.ledger import ledger_log
from mabdash.experiments.services.decision_log import decision_buffer
from mabdash.experiments.services.decisions import decide
from mabdash.experiments.services.rewards import rewards_record
from mabdash.queue import background

pytestmark = pytest.mark.django_db
MEANS = (0.2, 0.8, 0.5)


@pytest.fixture
def logged(experiment, client_key):
    """300 decisions of the churn experiment; every reward but the last 10 arrives."""
    principal = principal_for_key(client_key)
    rng = np.random.default_rng(3)
    decisions = [decide("churn", principal) for _ in range(300)]
    decision_buffer.flush()
    rewards = [{"decision_id": d.decision_id, "value": float(rng.random() < MEANS[d.arm])} for d in decisions[:-10]]
    rewards_record(rewards, principal)
    return decisions


def test_the_ledger_becomes_a_log_in_the_order_served(experiment, logged):
    log = ledger_log(experiment, None, timezone.now())
    # Decisions stamped in the same instant have no order between them: compare as multisets.
    served = sorted(zip(log.arms.tolist(), log.propensities.round(12).tolist(), strict=True))
    assert served == sorted((d.arm, round(d.propensity, 12)) for d in logged)
    assert int(np.isnan(log.rewards).sum()) == 10
    rewarded = log.rewards[~np.isnan(log.rewards)]
    assert set(rewarded.tolist()) <= {0.0, 1.0} and rewarded.size == 290


def test_a_report_is_queued_once_computed_by_the_worker_and_served_by_the_api(experiment, logged, operator):
    first = reports.report_request(experiment, "olivia")
    assert reports.report_request(experiment, "olivia").pk == first.pk  # one queued at a time
    done = reports.report_compute(first.pk)
    assert (done.status, done.progress, done.stage) == ("done", 1.0, "done")
    result = done.result
    assert (result["decisions"], result["rewarded"], result["missing_rewards"]) == (300, 290, 10)
    assert [row["target"] for row in result["fixed"]] == [
        "always churn:1",
        "always churn:2",
        "always churn:3",
        "uniform split",
        "current split, frozen",
    ]
    assert [row["target"] for row in result["strategies"]] == [
        "naive",
        "validation",
        "ab_test",
        "epsilon_greedy",
        "ucb1",
        "thompson (this experiment's)",
        "discounted_thompson",
        "sw_ucb",
    ]
    assert result["sentence"]
    client = APIClient()
    client.force_authenticate(operator)
    body = client.get("/api/v1/experiments/churn/counterfactual/").json()
    assert (body["id"], body["status"], body["ledger_version"]) == (done.pk, "done", done.ledger_version)
    again = client.post("/api/v1/experiments/churn/counterfactual/", {}, format="json")
    assert again.status_code == 202 and again.json()["status"] == "queued" and again.json()["id"] != done.pk
    assert background.drain()


def test_the_api_checks_roles_and_input(api, experiment, client_key, viewer):
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.get("/api/v1/experiments/churn/counterfactual/").status_code == 404  # none yet
    refused = client.post("/api/v1/experiments/churn/counterfactual/", {}, format="json")
    assert refused.status_code == 403
    assert api(client_key).post("/api/v1/experiments/churn/counterfactual/", {}, format="json").status_code == 403
    admin = APIClient()
    from mabdash.accounts.services import api_key_create

    admin.credentials(
        HTTP_AUTHORIZATION=f"Api-Key {api_key_create(name='ops', role='admin', all_experiments=True).raw_key}"
    )
    bad = admin.post("/api/v1/experiments/churn/counterfactual/", {"since": "yesterday"}, format="json")
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"since"}
    unknown = admin.post("/api/v1/experiments/churn/counterfactual/", {"until": "x"}, format="json")
    assert unknown.status_code == 400 and set(unknown.json()["errors"]) == {"until"}


def test_the_command_computes_prints_and_writes_json(experiment, logged, tmp_path, capsys):
    path = tmp_path / "report.json"
    call_command("counterfactual", "churn", "--json", str(path), "--quiet")
    out = capsys.readouterr().out
    written = json.loads(path.read_text())
    assert out.splitlines()[0] == written["sentence"]
    assert "290 with a reward" in out
    assert CounterfactualReport.objects.get().status == "done"


def test_lost_and_stuck_reports_are_recovered(experiment):
    old = timezone.now() - timedelta(hours=1)
    queued = CounterfactualReport.objects.create(experiment=experiment, requested_by="x", requested_at=old)
    stuck = CounterfactualReport.objects.create(
        experiment=experiment, requested_by="x", requested_at=old, status="running", started_at=old
    )
    assert reports.reports_requeue_due() == 1
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error) == ("failed", "the worker stopped before finishing")
    queued.refresh_from_db()
    assert queued.status == "queued"
    assert background.drain()


def test_the_what_if_panel_shows_the_latest_report_and_operators_can_ask_for_another(
    experiment, logged, operator, viewer
):
    from django.test import Client

    viewer_client, operator_client = Client(), Client()
    viewer_client.force_login(viewer)
    operator_client.force_login(operator)
    page = viewer_client.get("/experiments/churn/").content.decode()
    assert "No report yet." in page and 'data-action="what-if"' not in page
    reports.report_compute(reports.report_request(experiment, "olivia").pk)
    page = viewer_client.get("/experiments/churn/").content.decode()
    done = CounterfactualReport.objects.get()
    assert done.result["sentence"].replace("'", "&#x27;") in page
    assert page.count('data-target="') == 13 and page.count('class="own"') == 1
    assert 'id="counterfactual-figure"' in page
    assert viewer_client.post("/experiments/churn/counterfactual/").status_code == 403
    response = operator_client.post("/experiments/churn/counterfactual/")
    assert response.status_code == 302 and response["Location"] == "/experiments/churn/#what-if"
    queued = CounterfactualReport.objects.exclude(pk=done.pk).get()
    page = operator_client.get("/experiments/churn/").content.decode()
    assert f'data-report="{queued.pk}"' in page and "What-if report #" in page
    assert background.drain()


def test_after_retention_a_report_covers_the_retained_period_and_says_so(experiment, logged, operator):
    from django.test import Client

    from mabdash.experiments.models import Decision, RetentionRun

    now = timezone.now()
    boundary = now - timedelta(days=30)
    old = list(Decision.objects.order_by("decision_id").values_list("decision_id", flat=True)[:100])
    Decision.objects.filter(decision_id__in=old).update(created_at=boundary - timedelta(days=1))
    # As retention records a run (its archive and drop are tested in test_retention.py).
    RetentionRun.objects.create(
        experiment=experiment, run_id="r1", boundary=boundary, checkpoint_version=0, decisions=0, rewards=0, archive="x"
    )
    done = reports.report_compute(reports.report_request(experiment, "olivia").pk)
    assert done.result["decisions"] == 200  # the 100 before the boundary are not the retained period
    assert done.result["period"] == {
        "since": boundary.isoformat(),
        "until": done.until.isoformat(),
        "archived_before": boundary.isoformat(),
    }
    client = Client()
    client.force_login(operator)
    page = client.get("/experiments/churn/").content.decode()
    assert f"from {boundary:%Y-%m-%d %H:%M} up to {done.until:%Y-%m-%d %H:%M} UTC" in page
    assert f"Decisions before {boundary:%Y-%m-%d %H:%M} UTC were archived by retention." in page
