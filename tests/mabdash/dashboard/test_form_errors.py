"""Bad input on every form of the dashboard, and the same values through the API: a clear
message next to the field, nothing stored, never a 500 — with the same rule on both sides."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from mabdash.experiments.models import AuditEntry, Experiment, ModelVersion, Override

pytestmark = pytest.mark.django_db

HTML = "<script>alert(1)</script>"
HOSTILE_NUMBERS = ["1e400", "-1e400", "NaN", "inf", "-5", "", "ten", "9" * 400]


def page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def unchanged(experiment: Experiment) -> tuple:
    experiment.refresh_from_db()
    return (experiment.status, experiment.control_version, Override.objects.count(), AuditEntry.objects.count())


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"action": "pin", "arm": "7"}, "arm", "must be an arm position in [0, 3)"),
        ({"action": "pin", "arm": "-1"}, "arm", "must be an arm position"),
        ({"action": "pin", "arm": HTML}, "arm", "must be an arm position"),
        (
            {"action": "pin", "arm": "0", "expires_in_minutes": "-5"},
            "expires_in_minutes",
            "must be a number in (0, 525600]",
        ),
        (
            {"action": "pin", "arm": "0", "expires_in_minutes": "1e400"},
            "expires_in_minutes",
            "must be a number in (0, 525600]",
        ),
        ({"action": "pin", "arm": "0", "expires_in_minutes": "soon"}, "expires_in_minutes", "must be a number"),
        ({"action": "pin", "arm": "0", "reason": "x" * 1001}, "reason", "at most 1,000 characters (got 1,001)"),
        (
            {"action": "weights", "weight_0": "1e308", "weight_1": "1e308"},
            "weights",
            "the weights must have a positive, finite sum",
        ),
        ({"action": "weights", "weight_0": "1e400"}, "weights", "every weight must be a finite number ≥ 0"),
        ({"action": "weights", "weight_0": "NaN"}, "weights", "every weight must be a finite number ≥ 0"),
        (
            {"action": "weights", "weight_0": "-1", "weight_1": "2"},
            "weights",
            "every weight must be a finite number ≥ 0",
        ),
        (
            {"action": "weights", "weight_0": "0", "weight_1": ""},
            "weights",
            "the weights must have a positive, finite sum",
        ),
        ({"action": "weights", "weight_0": HTML}, "weights", "must be a number"),
        ({"action": "rollback_arm", "arm": "1", "confirmed": "yes"}, "reason", "say why the arm is rolled back"),
        (
            {"action": HTML},
            "action",
            "must be one of pin, pause_arm, rollback_arm, restore_arm, promote, weights, clear_override, pause, resume, stop, add_arm, settings, archive",
        ),
    ],
)
def test_bad_action_input_is_shown_next_to_its_field_and_nothing_changes(operator, experiment, form, field, message):
    before = unchanged(experiment)
    response = page(operator).post("/experiments/churn/actions/", form)
    assert response.status_code == 400
    assert response.context["errors"] == {field: [message]}
    assert unchanged(experiment) == before
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html  # whatever was typed is escaped


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"action": "weights", "weights": [1e308, 1e308, 0]},
            "weights",
            "the weights must have a positive, finite sum",
        ),
        ({"action": "weights", "weights": [-1, 2, 0]}, "weights", "every weight must be a finite number ≥ 0"),
        (
            {"action": "pin", "arm": 0, "reason": "x" * 1001},
            "reason",
            "Ensure this field has no more than 1000 characters.",
        ),
        ({"action": "pin", "arm": 7}, "arm", "must be an arm position in [0, 3)"),
    ],
)
def test_the_api_applies_the_same_rules(api, admin_key, experiment, body, field, message):
    before = unchanged(experiment)
    response = api(admin_key).post("/api/v1/experiments/churn/actions/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {field: [message]}
    assert unchanged(experiment) == before


def test_weights_are_normalised_on_the_server_the_same_way_for_form_and_api(operator, api, admin_key, make_experiment):
    make_experiment("by-form")
    make_experiment("by-api", model_version_ids=list(ModelVersion.objects.values_list("pk", flat=True)))
    page(operator).post("/experiments/by-form/actions/", {"action": "weights", "weight_0": "1", "weight_1": "3"})
    api(admin_key).post(
        "/api/v1/experiments/by-api/actions/", {"action": "weights", "weights": [1, 3, 0]}, format="json"
    )
    weights = [Override.objects.get(experiment__slug=slug).weights for slug in ("by-form", "by-api")]
    assert weights == [[0.25, 0.75, 0.0], [0.25, 0.75, 0.0]]
    shown = page(operator).get("/experiments/by-form/").context["weight_rows"]
    assert [row["value"] for row in shown] == [25.0, 75.0, 0.0]  # the form shows the weights in force


CREATE = {
    "slug": "fresh",
    "name": "Fresh",
    "reward_kind": "binary",
    "policy_kind": "epsilon_greedy",
    "policy_seed": "0",
    "reward_window_seconds": "86400",
    "default_arm": "0",
    "approval_mode": "direct",
    "rollback_mode": "auto",
    "status": "running",
    "guard-enabled": "on",
    "guard-floor.enabled": "on",
    "guard-relative.enabled": "on",
    "guard-change.enabled": "on",
    "guard-shortfall.enabled": "on",
}


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"slug": "Bad Slug"}, "slug", "lowercase letters, digits and hyphens"),
        ({"slug": HTML}, "slug", "lowercase letters, digits and hyphens"),
        ({"name": ""}, "name", "This field is required."),
        ({"name": "x" * 201}, "name", "at most 200 characters"),
        ({"param-epsilon_greedy-epsilon": "1e400"}, "policy_kind", "epsilon"),
        ({"param-epsilon_greedy-epsilon": "2"}, "policy_kind", "epsilon"),
        ({"param-epsilon_greedy-epsilon": "lots"}, "policy_kind", "must be a number"),
        ({"default_arm": "7"}, "default_arm", "must be an arm position in [0, 2)"),
        ({"reward_window_seconds": "-1"}, "reward_window_seconds", "greater than or equal to 1"),
        ({"reward_window_seconds": "9" * 400}, "reward_window_seconds", "less than or equal to 31536000"),
        ({"guard-floor.threshold": "NaN"}, None, "guardrails"),
        ({"guard-window": "1e400"}, None, "guardrails"),
        ({"guard-window": "0"}, None, "guardrails.window: must be in [1, 100000]"),
    ],
)
def test_bad_experiment_forms_are_shown_next_to_the_field_and_nothing_is_created(
    operator, model_versions, changes, field, fragment
):
    form = {**CREATE, "models": [str(model_versions[0].pk), str(model_versions[1].pk)], **changes}
    response = page(operator).post("/experiments/new/", form)
    assert response.status_code == 400
    errors = response.context["form"].errors
    found = " ".join(errors.get(field if field else "__all__", []))
    assert fragment in found, errors
    assert not Experiment.objects.exists()
    assert "<script>alert(1)</script>" not in response.content.decode()


def test_an_experiment_created_in_the_browser_is_what_the_form_said(operator, model_versions):
    form = {
        **CREATE,
        "models": [str(m.pk) for m in model_versions],
        "param-epsilon_greedy-epsilon": "0.2",
        "guard-window": "50",
    }
    response = page(operator).post("/experiments/new/", form, follow=True)
    assert response.redirect_chain[-1][0] == "/experiments/fresh/"
    experiment = Experiment.objects.get(slug="fresh")
    assert (experiment.policy_kind, experiment.policy_params, experiment.guardrails) == (
        "epsilon_greedy",
        {"epsilon": 0.2},
        {"window": 50},
    )
    assert experiment.arms.count() == 3 and experiment.status == "running"


def test_settings_changed_in_the_browser_keep_what_was_learned(operator, experiment):
    form = {
        **CREATE,
        "policy_kind": "epsilon_greedy",
        "param-epsilon_greedy-epsilon": "0.3",
        "name": "Churn v2",
        "reason": "tune",
    }
    form.pop("slug"), form.pop("status"), form.pop("reward_kind")
    form["expected_version"] = str(experiment.control_version)
    response = page(operator).post("/experiments/churn/settings/", form, follow=True)
    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("Done: Changed settings: name → Churn v2")
    experiment.refresh_from_db()
    assert (experiment.name, experiment.policy_kind, experiment.policy_params) == (
        "Churn v2",
        "epsilon_greedy",
        {"epsilon": 0.3},
    )
    again = page(operator).post(
        "/experiments/churn/settings/", {**form, "expected_version": str(experiment.control_version)}
    )
    assert again.status_code == 400 and "nothing changes" in " ".join(again.context["form"].non_field_errors())


def test_retention_is_set_in_the_browser_and_emptied_back_to_the_global_default(operator, experiment):
    form = {**CREATE, "name": experiment.name, "reason": "keep a quarter", "retention_days": "90"}
    form.pop("slug"), form.pop("status"), form.pop("reward_kind")
    form["expected_version"] = str(experiment.control_version)
    response = page(operator).post("/experiments/churn/settings/", form, follow=True)
    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("Done: Changed settings: retention → 90 days"), message
    experiment.refresh_from_db()
    assert experiment.retention_days == 90
    assert 'name="retention_days" value="90"' in page(operator).get("/experiments/churn/settings/").content.decode()
    bad = page(operator).post(
        "/experiments/churn/settings/",
        {**form, "retention_days": "0", "expected_version": str(experiment.control_version)},
    )
    assert bad.status_code == 400 and bad.context["form"].errors["retention_days"]
    emptied = {**form, "retention_days": "", "expected_version": str(experiment.control_version)}
    response = page(operator).post("/experiments/churn/settings/", emptied, follow=True)
    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("Done: Changed settings: retention → the global default"), message
    experiment.refresh_from_db()
    assert experiment.retention_days is None


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"name": "bad name!"}, "name", "letters, digits"),
        ({"version": ""}, "version", "This field is required."),
        ({"validation_score": "1e400"}, "validation_score", "Enter a number."),
        ({"validation_score": "NaN"}, "validation_score", "Enter a number."),
        ({"metadata": "[1, 2]"}, "metadata", "must be a JSON object"),
        ({"metadata": "{" * 5000}, "metadata", "must be a JSON object"),
        ({"metadata": json.dumps({"a": "x" * 70_000})}, "metadata", "at most 65536 bytes"),
        ({"artifact_uri": HTML * 100}, "artifact_uri", "at most 500 characters"),
    ],
)
def test_bad_model_registrations_are_shown_next_to_the_field(operator, changes, field, fragment):
    form = {
        "name": "m",
        "version": "1",
        "artifact_uri": "s3://m",
        "validation_score": "0.8",
        "metadata": "{}",
        **changes,
    }
    response = page(operator).post("/models/new/", form)
    assert response.status_code == 400
    assert fragment in " ".join(response.context["form"].errors.get(field, [])), response.context["form"].errors
    assert not ModelVersion.objects.exists()
