"""Human-in-the-loop control in a real browser against a real stack, and an automatic
rollback learned by a real worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import numpy as np
import pytest

from mabdash.devstack import Client, create_experiment, wait_for
from tests.e2e.browser import chromium, login, screenshot, wait_js
from tests.receiver import Receiver

pytestmark = [pytest.mark.stack]

PASSWORDS = {"olivia": "olivia-pass-123", "rita": "rita-pass-1234", "ana": "ana-pass-12345"}


def users(stack) -> None:
    for name, role in (("olivia", "operator"), ("rita", "operator"), ("ana", "approver")):
        stack.manage("create_user", name, "--role", role, "--password-env", "PW", env={"PW": PASSWORDS[name]})
    # rita requests and could approve — but never her own request.
    stack.shell(
        "from django.contrib.auth.models import Group, User; "
        "User.objects.get(username='rita').groups.add(Group.objects.get(name='approver'))"
    )


@pytest.fixture
def control_stack(embedded_stack):
    stack = embedded_stack
    stack.env["MABDASH_WEBHOOK_BACKOFF_SECONDS"] = "1"
    users(stack)
    stack.start_worker()
    stack.start_beat()
    web = stack.start_web(workers=2)
    admin = Client(web, stack.api_key("admin", "--role", "admin", "--all-experiments"))
    return stack, web, admin


def message(page) -> str:
    return page.locator(".messages").inner_text()


@pytest.mark.browser
def test_an_operator_pins_a_model_from_the_page_and_decide_follows(control_stack):
    stack, web, admin = control_stack
    create_experiment(admin, "pinme")
    client = Client(web, stack.api_key("server", "--experiment", "pinme"))
    with chromium() as browser:
        page = login(browser, web, "olivia", PASSWORDS["olivia"])
        page.goto(f"{web}/experiments/pinme/")
        page.get_by_label("Arm", exact=True).select_option("2")
        page.get_by_label("Reason", exact=True).first.fill("canary for model 2")
        page.get_by_role("button", name="Pin", exact=True).click()
        assert "Done: Pinned pinme-model:2 (arm #2) until cleared: it gets all traffic." in message(page)
        assert "Pinned: arm #2 gets all traffic" in page.locator("[data-override]").inner_text()
        screenshot(page, "control_pinned")
    decisions = [client.post("/api/v1/experiments/pinme/decide/").json() for _ in range(10)]
    assert {(d["arm"], d["served_by"], d["propensity"]) for d in decisions} == {(2, "pin", 1.0)}


@pytest.mark.browser
def test_four_eyes_the_requester_cannot_approve_and_a_second_approver_can(control_stack):
    stack, web, admin = control_stack
    create_experiment(admin, "careful", approval_mode="four_eyes")
    client = Client(web, stack.api_key("server", "--experiment", "careful"))
    with chromium() as browser:
        rita = login(browser, web, "rita", PASSWORDS["rita"])
        rita.goto(f"{web}/experiments/careful/")
        rita.get_by_label("Arm", exact=True).select_option("1")
        rita.get_by_role("button", name="Pin", exact=True).click()
        assert "Another user with the approver role must approve it" in message(rita)
        rita.locator("[data-status=pending] [data-decide=approve]").click()
        assert "you cannot approve or reject your own request" in message(rita)
        assert rita.locator("[data-status=pending]").count() == 1
        screenshot(rita, "control_own_request_refused")
        assert {client.post("/api/v1/experiments/careful/decide/").json()["served_by"] for _ in range(5)} == {"policy"}

        ana = login(browser, web, "ana", PASSWORDS["ana"])
        ana.goto(f"{web}/experiments/careful/")
        ana.locator("[data-status=pending] [data-decide=approve]").click()
        assert "approved" in message(ana)
        assert ana.locator("[data-status=applied]").count() == 1
        screenshot(ana, "control_approved_by_second_person")
    decisions = [client.post("/api/v1/experiments/careful/decide/").json() for _ in range(5)]
    assert {(d["arm"], d["served_by"]) for d in decisions} == {(1, "pin")}


@pytest.mark.browser
def test_veto_window_a_vetoed_proposal_never_applies_an_unvetoed_one_does(control_stack):
    stack, web, admin = control_stack
    create_experiment(admin, "vetoes", rollback_mode="veto_window", guardrails={"veto_minutes": 0.5})
    stack.shell(
        "from mabdash.control.models import ActionRequest; from mabdash.control.services.actions import SYSTEM, request_create; "
        "from mabdash.experiments.models import Experiment; e = Experiment.objects.get(slug='vetoes'); "
        "[request_create(e, 'rollback_arm', {'arm': arm}, ActionRequest.Mode.VETO_WINDOW, requested_by=SYSTEM, "
        "reason='detector fired', evidence={'rules': ['relative']}) for arm in (1, 2)]"
    )
    with chromium() as browser:
        ana = login(browser, web, "ana", PASSWORDS["ana"])
        ana.goto(f"{web}/experiments/vetoes/")
        first = ana.locator("[data-status=pending]").first
        assert "applies at" in first.inner_text() and first.get_by_role("button", name="Veto").is_visible()
        vetoed = first.get_attribute("data-request")
        first.get_by_role("button", name="Veto").click()
        assert f"Request #{vetoed} rejected." in message(ana)
        screenshot(ana, "control_vetoed")

    def arms():
        return {a["position"]: a["status"] for a in admin.state("vetoes")["arms"]}

    # Beat applies the unvetoed proposal once its 30 s window ends.
    final = wait_for(lambda: (s := arms()) and "rolled_back" in s.values() and s, 90, "the unvetoed rollback")
    rolled_back = [p for p, status in final.items() if status == "rolled_back"]
    assert len(rolled_back) == 1 and str(rolled_back[0]) != vetoed  # only the unvetoed one
    requests = {r["id"]: r["status"] for r in admin.get("/api/v1/experiments/vetoes/requests/").json()}
    assert requests[int(vetoed)] == "rejected" and sorted(requests.values()) == ["applied", "rejected"]


@pytest.mark.browser
def test_an_arm_whose_rewards_collapse_is_rolled_back_automatically(control_stack):
    stack, web, admin = control_stack
    # Floor over each arm's last 30 rewards; the change detector and the relative rule run too.
    create_experiment(admin, "collapse", guardrails={"window": 30, "floor": {"min_samples": 30}})
    client = Client(web, stack.api_key("server", "--experiment", "collapse"))
    receiver = Receiver([503])  # the first delivery fails: the worker must retry it
    hook = admin.post("/api/v1/experiments/collapse/webhooks/", {"url": receiver.url, "events": ["rollback.applied"]})
    assert hook.status_code == 201
    rng = np.random.default_rng(7)
    healthy = {0: 0.5, 1: 0.7, 2: 0.5}  # arm 1 is the best model …
    broken = {**healthy, 1: 0.0}  # … until its predictions go wrong after warm-up

    def round_of_traffic(means):
        decisions = [client.post("/api/v1/experiments/collapse/decide/").json() for _ in range(40)]
        rewards = [{"decision_id": d["decision_id"], "value": float(rng.random() < means[d["arm"]])} for d in decisions]
        client.post("/api/v1/rewards/", {"rewards": rewards})
        return wait_for(lambda: (s := client.state("collapse"))["pending_rewards"] == 0 and s, 30, "rewards applied")

    for _ in range(5):
        state = round_of_traffic(healthy)
    assert state["arms"][1]["allocation"] > 0.5  # the bandit found arm 1
    shares = []
    for _ in range(10):  # the configured number of updates to react within
        state = round_of_traffic(broken)
        shares.append(state["arms"][1]["allocation"])
        if state["arms"][1]["status"] == "rolled_back":
            break
    assert state["arms"][1]["status"] == "rolled_back", shares
    assert state["arms"][1]["allocation"] < 0.05
    served_after = [client.post("/api/v1/experiments/collapse/decide/").json()["arm"] for _ in range(50)]
    assert 1 not in served_after
    with chromium() as browser:
        page = login(browser, web, "olivia", PASSWORDS["olivia"])
        page.goto(f"{web}/experiments/collapse/")
        wait_js(page, "document.body.dataset.policyVersion !== undefined")
        card = page.locator(".history .event[data-kind='rollback.applied']").first
        sentence = card.locator(".sentence").inner_text()
        # Whichever rules fired in the look that rolled it back (the floor, the change and
        # shortfall detectors, the relative rule: which of them comes first depends on how many
        # of the arm's rewards came before the collapse), each says why in words, in that order.
        clauses = {
            "floor": r"mean reward 0\.00 over its last 30 rewards, at or below the floor 0\.01",
            "change": r"mean reward fell from 0\.\d\d over [\d,]+ earlier rewards to 0\.\d\d over its last \d+ "
            r"\(change evidence \d+\.\d, threshold 12\.5\)",
            "relative": r"mean reward .+ valid however often it is checked\)",
            "shortfall": r"mean reward 0\.\d\d over its last [\d,]+ rewards vs 0\.\d\d over its [\d,]+ earlier rewards "
            r"and the other models' [\d,]+ over the same period \(shortfall evidence \d+\.\d, threshold 12\.5\)",
        }
        prefix = "collapse-model:1 (arm #1) rolled back automatically: "
        assert sentence.startswith(prefix), sentence
        said = sentence.removeprefix(prefix).split("; ")
        fired = [rule for rule, pattern in clauses.items() if any(re.fullmatch(pattern, part) for part in said)]
        assert len(fired) == len(said) >= 1, sentence
        evidence = json.loads(card.locator("details pre").text_content())["evidence"]
        assert sorted(evidence["rules"]) == sorted(fired), (evidence["rules"], sentence)
        if "floor" in fired:
            floor = [d["evidence"] for d in evidence["detections"] if d["rule"] == "floor"]
            assert [e["window_mean"] for e in floor] == [0.0], floor
        markers = page.evaluate(
            "document.getElementById('chart-allocation').data.filter(t => t.name === 'actions')[0].text"
        )
        assert any(text.startswith("collapse-model:1 (arm #1) rolled back automatically") for text in markers)
        screenshot(page, "control_automatic_rollback")

    # The worker delivers the signed rollback.applied event, retrying after the 503.
    try:
        wait_for(lambda: len(receiver.requests) >= 2, 60, "the webhook to be retried and delivered")
    finally:
        receiver.close()
    body = receiver.requests[-1]["body"]
    headers = receiver.requests[-1]["headers"]
    secret = hook.json()["secret"]
    signed = hmac.new(secret.encode(), f"{headers['X-Mabdash-Timestamp']}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Mabdash-Signature"] == f"sha256={signed}"
    event = json.loads(body)
    assert (event["event"], event["data"]["arm"], event["data"]["by"]) == ("rollback.applied", 1, "system")
    deliveries = admin.get(f"/api/v1/webhooks/{hook.json()['id']}/deliveries/").json()
    assert [(d["status"], d["attempts"]) for d in deliveries] == [("delivered", 2)]


def test_a_model_that_breaks_under_traffic_serves_at_most_100_decisions_before_its_rollback(control_stack):
    """The default guardrails on the live pipeline (API, worker, PostgreSQL, Redis): Thompson
    on three models at 0.85–0.87; the favourite breaks to 0.2 (a broken feature pipeline, as
    in the demo). Traffic comes in rounds of 50 decisions whose rewards are posted together;
    every decision the broken model serves from the break on is counted until decide stops
    choosing it."""
    stack, web, admin = control_stack
    create_experiment(admin, "breaks")  # Thompson sampling, the default guardrails
    client = Client(web, stack.api_key("server", "--experiment", "breaks"))
    rng = np.random.default_rng(11)
    healthy = {0: 0.85, 1: 0.87, 2: 0.85}
    broken = {**healthy, 1: 0.2}

    def round_of_traffic(means):
        decisions = [client.post("/api/v1/experiments/breaks/decide/").json() for _ in range(50)]
        rewards = [{"decision_id": d["decision_id"], "value": float(rng.random() < means[d["arm"]])} for d in decisions]
        assert client.post("/api/v1/rewards/", {"rewards": rewards}).status_code < 300
        wait_for(lambda: client.state("breaks")["pending_rewards"] == 0, 30, "rewards applied")
        return sum(d["arm"] == 1 for d in decisions)

    for _ in range(12):  # 600 healthy decisions
        round_of_traffic(healthy)
    state = client.state("breaks")
    assert all(arm["status"] == "active" for arm in state["arms"]), state["arms"]  # no false rollback
    served_after_break = 0
    for _ in range(20):
        served_after_break += round_of_traffic(broken)
        if client.state("breaks")["arms"][1]["status"] == "rolled_back":
            break
    state = client.state("breaks")
    assert state["arms"][1]["status"] == "rolled_back" and served_after_break <= 100, served_after_break
    assert all(client.post("/api/v1/experiments/breaks/decide/").json()["arm"] != 1 for _ in range(30))
