"""An operator's day in Chromium, with the demo simulator's traffic flowing through the REST
API (≥ 50 decisions/s): create an experiment in the browser, let it learn, then pin, set
weights, pause, resume, roll back and restore an arm — each at a random moment 0–20 s after
the page loaded, each succeeding at the first attempt — while the charts show what decide
serves; a four-eyes request approved in a second browser; an automatic rollback shown as a
card with its sentence. Screenshots go to test-artifacts/screenshots (and docs/img with
MABDASH_SCREENSHOTS=docs)."""

from __future__ import annotations

import os
import random
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mabdash.devstack import ROOT, Client, wait_for
from tests.e2e.browser import chromium, login, message_after, screenshot, wait_js

pytestmark = [pytest.mark.stack, pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
PASSWORDS = {"olivia": "olivia-pass-123", "ana": "ana-pass-12345"}
DOCS_IMG = ROOT / "docs" / "img"


def save(page, name: str) -> None:
    path = screenshot(page, name)
    if os.environ.get("MABDASH_SCREENSHOTS") == "docs":
        shutil.copy(path, DOCS_IMG / f"{name}.png")


def simulator(stack, slug: str, key: str, rate: int, drift_at: int, workdir: Path) -> None:
    key_file = workdir / f"{slug}.key"
    key_file.write_text(key)
    command = [sys.executable, str(ROOT / "manage.py"), "simulate", "--url", stack.web_url, "--experiment", slug]
    command += ["--key-file", str(key_file), "--rate", str(rate), "--drift-at", str(drift_at), "--batch", "10"]
    stack._spawn(f"simulate-{slug}", command, None, restart=False)


def shares(client: Client, slug: str, n: int) -> list[float]:
    """What decide serves, measured: the share of each arm over ``n`` decisions."""
    with ThreadPoolExecutor(4) as pool:
        arms = list(pool.map(lambda _: client.post(f"/api/v1/experiments/{slug}/decide/").json()["arm"], range(n)))
    return [arms.count(k) / n for k in range(3)]


def chart_and_table(page) -> tuple[list[float], list[float]]:
    """The allocation chart's newest point and the arms table's served shares, as the page shows them."""
    chart = page.evaluate(
        "document.getElementById('chart-allocation').data.filter(t => t.stackgroup === 'served')"
        ".map(t => t.y[t.y.length - 1])"
    )
    table = page.evaluate(
        "Array.from(document.querySelectorAll('#arms td.served-share')).map(td => parseFloat(td.textContent) / 100)"
    )
    return chart, table


def act(page, web: str, slug: str, delay: float, do) -> str:
    page.goto(f"{web}/experiments/{slug}/")
    wait_js(page, "document.body.dataset.policyVersion !== undefined")
    time.sleep(delay)  # traffic keeps flowing and learning keeps moving the serving version
    do(page)
    return page.locator(".messages").inner_text()


def test_an_operators_day(production_stack, tmp_path):
    stack = production_stack
    for name, role in (("olivia", "operator"), ("ana", "approver")):
        stack.manage("create_user", name, "--role", role, "--password-env", "PW", env={"PW": PASSWORDS[name]})
    stack.manage("seed_demo")  # the census models and the demo experiment
    stack.start_worker()
    stack.start_evaluator()
    stack.start_beat()
    web = stack.start_web(workers=3)
    stack.web_url = web
    census_key = stack.api_key("census-sim", "--experiment", "census-income")
    # The demo experiment: census-boosting breaks after 1,500 requests; the guardrails must
    # roll it back from tens of its broken rewards (counted by the simulator: see below).
    simulator(stack, "census-income", census_key, 40, 1500, tmp_path)
    rng = random.Random(20261202)

    with chromium() as browser:
        olivia = login(browser, web, "olivia", PASSWORDS["olivia"])
        wait_for(lambda: "1000 decisions" in stack.log("simulate-census-income"), 120, "1,000 census decisions")
        olivia.goto(f"{web}/experiments/census-income/")
        wait_js(olivia, "document.body.dataset.policyVersion !== undefined")
        save(olivia, "experiment-page-before-rollback")

        # Create an experiment in the browser from the registered census models.
        olivia.goto(f"{web}/experiments/new/")
        olivia.get_by_label("Slug").fill("day")
        olivia.get_by_label("Name").fill("An operator's day")
        for model in ("census-logreg:1", "census-tree:1", "census-boosting:1"):
            olivia.get_by_label(model).check()
        olivia.get_by_label("Strategy").select_option("thompson")
        save(olivia, "create-experiment-form")
        olivia.get_by_role("button", name="Create experiment").click()
        olivia.wait_for_url(f"{web}/experiments/day/")
        client = Client(web, stack.api_key("day-server", "--experiment", "day"))
        simulator(stack, "day", stack.api_key("day-sim", "--experiment", "day"), 50, -1, tmp_path)
        wait_for(
            lambda: (s := client.state("day"))["policy_version"] > 5 and sum(a["served"] for a in s["arms"]) > 300,
            120,
            "learning",
        )

        def pin(page):
            page.get_by_label("Arm", exact=True).select_option("1")
            page.get_by_label("Reason", exact=True).first.fill("canary")
            page.get_by_role("button", name="Pin", exact=True).click()

        def weights(page):
            for position, value in enumerate(("1", "3", "0")):
                page.locator(f"#w-{position}").fill(value)
            page.get_by_role("button", name="Set weights").click()

        def clear(page):
            page.get_by_role("button", name="Clear pin / weights").click()

        def pause(page):
            page.get_by_role("button", name="Pause experiment").click()

        def resume(page):
            page.get_by_role("button", name="Resume").click()

        def rollback(page):
            page.get_by_label("Arm", exact=True).select_option("2")
            page.get_by_label("Reason", exact=True).first.fill("miscalibrated")
            page.get_by_role("button", name="Roll back…").click()
            page.locator("[data-confirm=yes]").click()

        def restore(page):
            page.get_by_label("Arm", exact=True).select_option("2")
            page.get_by_role("button", name="Restore").click()

        day = [pin, clear, weights, clear, pause, resume, rollback, restore, weights, clear]
        outcomes = []
        for step in day:
            message = act(olivia, web, "day", rng.uniform(0, 20), step)
            outcomes.append((step.__name__, message.startswith("Done: ")))
            assert message.startswith("Done: "), (step.__name__, message)
            if step in (pin, weights):
                wait_js(olivia, "document.body.dataset.policyVersion !== undefined")
                olivia.reload()
                wait_js(olivia, "document.getElementById('chart-allocation').data !== undefined")
                chart, table = chart_and_table(olivia)
                expected = [0.0, 1.0, 0.0] if step is pin else [0.25, 0.75, 0.0]
                observed = shares(client, "day", 8000)
                assert all(abs(c - t) < 0.001 for c, t in zip(chart, table, strict=True)), (chart, table)
                assert all(abs(c - e) < 0.001 for c, e in zip(chart, expected, strict=True)), (chart, expected)
                assert all(abs(o - e) <= 0.02 for o, e in zip(observed, expected, strict=True)), (observed, expected)
                if step is weights:
                    save(olivia, "experiment-page-manual-weights")
        assert outcomes == [(step.__name__, True) for step in day]  # 10 of 10 at the first attempt

        # Four-eyes: switch the experiment, ask for a pin, a second person approves it.
        olivia.goto(f"{web}/experiments/day/settings/")
        olivia.get_by_label("Approval mode").select_option("four_eyes")
        olivia.get_by_role("button", name="Save settings").click()
        assert "Done: Changed settings: approval mode → four_eyes" in olivia.locator(".messages").inner_text()
        message = act(olivia, web, "day", 0.0, pin)
        assert message.startswith("Requested: Pinned census-logreg:1 (arm #1)"), message
        ana_page = login(browser, web, "ana", PASSWORDS["ana"])
        ana_page.goto(f"{web}/experiments/day/")
        ana_page.locator("[data-status=pending] [data-decide=approve]").click()
        assert "approved" in ana_page.locator(".messages").inner_text()
        olivia.goto(f"{web}/experiments/day/")
        card = olivia.locator(".history .event").first
        assert card.locator(".sentence").inner_text().startswith("Pinned census-logreg:1 (arm #1)")
        steps = card.locator(".steps li").all_inner_texts()
        assert len(steps) == 3, steps  # asked, carried out, approved: one card
        assert "Asked for approval" in steps[0] and any("Approved request" in step for step in steps), steps

        # The automatic rollback of the demo experiment: a card with its sentence.
        # (The shortfall rule may also roll back census-tree, the weakest model, before the
        # break: a model worse than the others all along. The card checked is the broken one's.)
        wait_for(
            lambda: any(
                a["position"] == 2 and a["status"] == "rolled_back" for a in client_census(stack, web, census_key)
            ),
            240,
            "the rollback",
        )
        olivia.goto(f"{web}/experiments/census-income/")
        wait_js(olivia, "document.body.dataset.policyVersion !== undefined")
        rollback_card = olivia.locator(
            ".history .event[data-kind='rollback.applied']", has_text="census-boosting:1 (arm #2) rolled back"
        ).first
        sentence = rollback_card.locator(".sentence").inner_text()
        # Whichever rule saw the break first says why (each that fired in the same look).
        change = (
            r"mean reward fell from 0\.\d\d over [\d,]+ earlier rewards to 0\.\d\d over its last [\d,]+ "
            r"\(change evidence \d+\.\d, threshold 12\.5\)"
        )
        relative = (
            r"mean reward 0\.\d\d \(at most 0\.\d\d\) vs at least 0\.\d\d for census-[a-z]+:1 \(arm #\d\), over [\d,]+ "
            r"rewards \(worse with 99\.5% confidence, valid however often it is checked\)"
        )
        shortfall = (
            r"mean reward 0\.\d\d over its last [\d,]+ rewards vs 0\.\d\d over its [\d,]+ earlier rewards and the "
            r"other models' [\d,]+ over the same period \(shortfall evidence \d+\.\d, threshold 12\.5\)"
        )
        rule = f"(?:{change}|{relative}|{shortfall})"
        assert re.fullmatch(
            rf"census-boosting:1 \(arm #2\) rolled back automatically: {rule}(?:; {rule}){{0,2}}", sentence
        ), sentence
        # The change rule needs tens of the broken model's rewards, not hundreds (#14): in 5,000
        # seeded simulations of this break (0.85 -> 0.24 after 1,000-1,400 healthy rewards, fed
        # in batches of 10) its recent window was 20 or 40 rewards in 98 %, over 100 in 0.08 %.
        for recent in re.findall(r"over its last ([\d,]+) (?:\(change evidence|rewards vs)", sentence):
            assert int(recent.replace(",", "")) <= 100, sentence
        # The requests the broken model serves until the rollback reaches decide are rate x
        # latency (reward batching, the learning interval, the serving refresh): a speed figure,
        # which on this loaded 2-core stack (Chromium, gunicorn, a worker, two simulators) reached
        # 123 in one CI run at 40 requests/s. The bound only says it took effect within seconds.
        served_after_break = _broken_served(stack.log("simulate-census-income"))
        assert served_after_break is not None and served_after_break <= 250, served_after_break
        assert "census-boosting:1 (arm #2): active → rolled back" in rollback_card.locator(".changes").inner_text()
        save(olivia, "experiment-page-after-rollback")
        olivia.goto(f"{web}/audit/")
        save(olivia, "audit-page")

        # What if: a fresh counterfactual report of the demo experiment, started in the browser.
        olivia.goto(f"{web}/experiments/census-income/")
        message = message_after(olivia, olivia.locator("[data-action=what-if]").click)
        assert re.fullmatch(r"What-if report #\d+ is queued; this page shows it when it is done\.", message), message
        wait_for(lambda: olivia.locator("#what-if-sentence").count() == 1, 180, "the What-if report")
        wait_js(olivia, "document.getElementById('chart-counterfactual').data !== undefined")
        targets = olivia.locator("#what-if-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.target)")
        assert targets[:5] == [
            "always census-logreg:1",
            "always census-tree:1",
            "always census-boosting:1",
            "uniform split",
            "current split, frozen",
        ]
        assert "thompson (this experiment's)" in targets and len(targets) == 13
        assert olivia.locator("#what-if-table tr.own").count() == 1
        sentence = olivia.locator("#what-if-sentence").inner_text()
        assert re.match(r"^(Always serving .+|The .+ strategy) would have earned [+−]\d\.\d{3} per decision", sentence)
        save(olivia.locator("#what-if"), "what-if-panel")  # the panel alone
        assert olivia.csp_violations == [] and ana_page.csp_violations == []


def _broken_served(log: str) -> int | None:
    """The simulator's latest count of requests the broken model served since it broke."""
    counts = re.findall(r"census-boosting served (\d+) since it broke", log)
    return int(counts[-1]) if counts else None


def client_census(stack, web: str, key: str) -> list[dict]:
    return Client(web, key).state("census-income")["arms"]
