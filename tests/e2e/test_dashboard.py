"""The dashboard in a real browser against a real stack (gunicorn, worker, beat)."""

from __future__ import annotations

import pytest

from mabdash.devstack import Client, create_experiment
from tests.e2e.browser import chromium, login, screenshot, wait_js

pytestmark = [pytest.mark.stack, pytest.mark.browser]

CHARTS = ["allocation", "means", "cumulative", "belief", "probability_best", "traffic", "lag"]


@pytest.fixture
def dashboard(embedded_stack):
    stack = embedded_stack
    stack.manage("create_user", "olivia", "--role", "operator", "--password-env", "PW", env={"PW": "olivia-pass-123"})
    stack.manage("create_user", "victor", "--role", "viewer", "--password-env", "PW", env={"PW": "victor-pass-123"})
    stack.start_worker()
    stack.start_beat()
    web = stack.start_web(workers=2)
    create_experiment(Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments")), "web-ui")
    client = Client(web, stack.api_key("server", "--experiment", "web-ui"))
    decisions = [client.post("/api/v1/experiments/web-ui/decide/").json() for _ in range(40)]
    rewards = [{"decision_id": d["decision_id"], "value": float(d["arm"] == 2)} for d in decisions]
    assert client.post("/api/v1/rewards/", {"rewards": rewards}).json()["accepted"] == 40
    client.wait_until_applied("web-ui", 40)
    return stack, web, client


def chart_traces(page, name: str) -> list[dict]:
    return page.evaluate(f"document.getElementById('chart-{name}').data.map(t => ({{name: t.name, y: t.y, x: t.x}}))")


def test_operator_sees_live_charts_that_follow_new_rewards(dashboard):
    _, web, client = dashboard
    with chromium() as browser:
        page = login(browser, web, "olivia", "olivia-pass-123")
        row = page.locator("tr[data-experiment='web-ui']")
        assert row.locator("th a").inner_text() == "web-ui"
        wait_js(page, "document.querySelector('#spark-web-ui').data !== undefined")
        screenshot(page, "overview")

        row.locator("th a").click()
        wait_js(page, "document.body.dataset.policyVersion !== undefined")
        state = client.state("web-ui")
        labels = [f"#{a['position']} {a['model']['name']}:{a['model']['version']}" for a in state["arms"]]
        for name in CHARTS:
            assert chart_traces(page, name), f"chart {name} has no traces"
        assert [t["name"] for t in chart_traces(page, "allocation")[:3]] == labels
        (best,) = chart_traces(page, "probability_best")
        assert best["x"] == labels and best["y"] == [a["probability_best"] for a in state["arms"]]
        served = page.locator("#arms tbody tr").evaluate_all("rows => rows.map(r => Number(r.children[4].textContent))")
        assert served == [a["served"] for a in state["arms"]]
        assert page.get_by_role("button", name="Pause experiment").is_visible()
        assert page.locator("#updated").inner_text().startswith("updated ")
        screenshot(page, "experiment_detail")

        # New rewards, learned by the worker, appear without a reload.
        page.evaluate("window.notReloaded = true")
        version = int(page.evaluate("document.body.dataset.policyVersion"))
        more = [{"experiment": "web-ui", "arm": 0, "value": 1}] * 60
        assert client.post("/api/v1/rewards/", {"rewards": more}).json()["accepted"] == 60
        new_state = client.wait_until_applied("web-ui", 100)
        wait_js(page, f"Number(document.body.dataset.policyVersion) >= {new_state['policy_version']}")
        assert new_state["policy_version"] > version
        assert page.evaluate("window.notReloaded") is True
        rewards = page.locator("#arms tbody tr").evaluate_all(
            "rows => rows.map(r => Number(r.children[5].textContent))"
        )
        assert rewards == [a["rewards"] for a in new_state["arms"]]
        (best,) = chart_traces(page, "probability_best")
        assert best["y"] == [a["probability_best"] for a in new_state["arms"]]
        screenshot(page, "experiment_detail_updated")

        page.get_by_role("link", name="Models").click()
        screenshot(page, "model_list")
        page.get_by_role("link", name="Audit log").click()
        assert "experiment.created" in page.locator(".history").inner_text()
        screenshot(page, "audit_log")
        page.goto(f"{web}/api/docs/")
        page.locator(".opblock").first.wait_for()  # Swagger UI renders under the same policy
        assert page.csp_violations == []  # every page above worked under the Content Security Policy


def test_viewer_sees_no_action_buttons(dashboard):
    _, web, _ = dashboard
    with chromium() as browser:
        page = login(browser, web, "victor", "victor-pass-123", viewport={"width": 1280, "height": 800})
        page.goto(f"{web}/experiments/web-ui/")
        wait_js(page, "document.body.dataset.policyVersion !== undefined")
        assert page.locator("[data-action]").count() == 0
        assert page.get_by_role("button", name="Pause").count() == 0
        screenshot(page, "experiment_detail_viewer")


def test_wrong_password_is_refused(dashboard):
    _, web, _ = dashboard
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{web}/login/")
        page.get_by_label("User name").fill("olivia")
        page.get_by_label("Password").fill("nope")
        page.get_by_role("button", name="Log in").click()
        assert "Please enter a correct username and password" in page.get_by_role("alert").inner_text()
        screenshot(page, "login_refused")
