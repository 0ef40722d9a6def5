"""The event-id benchmark's smoke test: a small ledger, both kinds of ids recorded through the
real service, every figure present. It checks what was stored, not speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres]


def test_both_kinds_of_ids_are_recorded_and_measured(tmp_path):
    out = tmp_path / "event_ids.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.event_ids", "--rows", "5000", "--batches", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "MABDASH_LOG_LEVEL": "WARNING"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads(out.read_text())
    assert (data["rows"], data["batches"]) == (5000, 2)
    assert [len(data["runs"][kind]) for kind in ("uuid4", "uuid7")] == [2, 2]
    for kind in ("uuid4", "uuid7"):
        figures = data["kinds"][kind]
        assert figures["per_s"] > 0 and figures["wal_bytes_per_reward"] > 0 and figures["fpi_per_reward"] >= 0
