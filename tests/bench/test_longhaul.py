"""The long-haul benchmark's smoke test: ``python -m bench.longhaul --scale small`` runs end
to end against the real deployment and produces every figure (it asserts internally that the
rebuild reproduces the live state). It checks what was loaded and measured, not speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.longhaul import SCALES, figure_rows

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis]


def test_the_small_month_loads_and_every_figure_is_measured_on_both(tmp_path):
    out = tmp_path / "longhaul.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.longhaul", "--scale", "small", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads(out.read_text())
    small = SCALES["small"]
    assert data["loaded_rows"] == {
        "experiments_decision": small.decisions,
        "experiments_reward": small.rewards,
        "experiments_rewardkey": small.rewards,
        "experiments_allocationsnapshot": small.experiments * (small.days - 1) * 24 * 60,
        "experiments_auditentry": small.audit,
    }
    for phase in ("empty", "loaded"):
        figures = data[phase]
        assert figures["decide"]["errors"] == 0 and figures["decide"]["statuses"] == {
            "200": figures["decide"]["requests"]
        }
        assert figures["batched_rewards_per_s"] > 0 and figures["lag"]["samples"] > 0
        assert figures["data_endpoint_ms"] > 0 and figures["overview_ms"] > 0 and figures["claim_5000_ms"] > 0
    # The rebuild starts at the loaded month's checkpoint: it replays only what came after.
    rebuild = data["loaded"]["rebuild"]
    assert rebuild["history_rewards"] - rebuild["replayed_rewards"] >= small.rewards // small.experiments
    assert data["empty"]["rebuild"]["replayed_rewards"] == data["empty"]["rebuild"]["history_rewards"]
    # One day of the measured experiment's 30 is archived (its decisions are spread evenly).
    per_day = small.decisions // small.experiments // small.days
    assert abs(data["retention_day"]["decisions"] - per_day) <= per_day // 20
    assert data["retention_day"]["archive_bytes"] > 0
    printed = [name for name, _, _ in figure_rows(data)]  # the printed table: every figure, and the sizes
    assert all(name in run.stdout for name in printed) and "experiments_reward: " in run.stdout
