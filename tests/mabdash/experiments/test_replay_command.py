"""``manage.py replay`` hands its arguments to the Django-free study and prints its tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_manage_py_replay_prints_both_routings_with_paired_intervals(tmp_path):
    out = tmp_path / "study.json"
    args = ["--datasets", "census", "--scenarios", "break", "--seeds", "2", "--chunks", "10", "--quiet"]
    args += ["--cache", str(tmp_path / "cache"), "--json", str(out)]
    result = subprocess.run(
        [sys.executable, "manage.py", "replay", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    for routing in ("chunk", "request"):
        heading = f"census, break scenario at chunk 3, {routing}-level routing (rollback: all; 2 seeds, 10 chunks)"
        assert heading in result.stdout
    assert "minus the best's (95 % CI)" in result.stdout
    assert "census, break scenario, rollback: all: request- minus chunk-level routing:" in result.stdout
    data = json.loads(out.read_text())
    assert {(r["routing"], r["rollback"]) for r in data["results"]} == {
        ("chunk", "all"),
        ("request", "all"),
        ("chunk", "none"),
        ("request", "none"),
    }
    assert all(len(r["versus_best"]) == 7 for r in data["results"])
