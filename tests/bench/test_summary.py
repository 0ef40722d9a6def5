"""docs/BENCHMARKS.md rows are rendered from the results, ratios and targets computed from them."""

from __future__ import annotations

import json

from bench.results_file import results_write
from bench.summary import _kept_sections, _stamped, counterfactual_section, service_section, targets_section

RUN = {
    "decide_300": {"p50_ms": 1.54, "p95_ms": 2.21, "p99_ms": 3.04},
    "noop_300": {"p50_ms": 1.3, "p95_ms": 1.8, "p99_ms": 2.4},
    "decide_max_rate": 2500,
    "noop_max_rate": 3500,
    "decide_wrk_rps": 3813.2,
    "noop_wrk_rps": 5753.0,
    "bare_django_wrk_rps": 7082.0,
    "single_rewards": {"count": 4265, "per_s": 853.0},
    "insert_baseline_per_s": 14519.0,
    "batched_rewards": {"count": 381000, "per_s": 38111.0},
    "copy_baselines_rows_per_s": {"temp": 676826.0, "columns": 250000.0, "indexed": 95277.5},
    "lag": {"rate": 19055.7, "samples": 77, "p50_s": 0.2258, "p99_s": 0.2629},
}


def test_every_figure_is_next_to_its_baseline_and_ratio():
    rows = service_section(RUN)[4:]
    assert rows == [
        "| decide at 300 requests/s, open loop: p50 / p95 / p99 ms | 1.5 / 2.2 / 3.0 | trivial view: 1.3 / 1.8 / 2.4 | – |",
        "| highest rate with p99 ≤ 50 ms, open loop (requests/s) | 2,500 | trivial view: 3,500 | 0.71 |",
        "| throughput ceiling, wrk closed loop (requests/s) | 3,813 | trivial view: 5,753 | 0.66 |",
        "| trivial view behind mabdash's middleware, wrk (requests/s) | 5,753 | bare Django, no middleware: 7,082 | 0.81 |",
        "| single reward POSTs/s (6 clients, each committed before the answer) | 853 | one-row `INSERT`s, 6 connections: 14,519/s | 0.059 |",
        "| batched rewards/s (3 clients × 1,000 per POST) | 38,111 | `COPY` into a logged copy of the reward table (columns, constraints, foreign keys, every index): 95,278 rows/s | 0.400 |",
        "| 〃 | 38,111 | `COPY` into a logged table with the reward columns and a primary key only: 250,000 rows/s | 0.152 |",
        "| 〃 | 38,111 | `COPY` into a TEMP table (no write-ahead log, primary key only): an outer bound: 676,826 rows/s | 0.056 |",
        "| reward → decide lag at 19,056 rewards/s: p50 / p99 s (77 samples) | 0.23 / 0.26 | – | – |",
    ]


def test_rows_without_wrk_or_the_newer_baselines_are_left_out():
    old = {
        k: v
        for k, v in RUN.items()
        if k not in ("decide_wrk_rps", "noop_wrk_rps", "bare_django_wrk_rps", "insert_baseline_per_s")
    }
    old["decide_wrk_rps"] = old["noop_wrk_rps"] = None
    rows = service_section(old)[4:]
    assert len(rows) == 7
    assert rows[2] == "| single reward POSTs/s (6 clients, each committed before the answer) | 853 | – | – |"


def test_the_targets_table_is_computed_from_the_results():
    rows = targets_section(None, {"snapshots": 43_200, "arms": 10, "data_endpoint_ms": {"p95": 120.0}}, RUN)[4:]
    assert rows == [
        "| dashboard data endpoint ≤ 100 ms on 43,200 one-minute snapshots of 10 arms | p95 120.0 ms | **missed** |",
        "| decide at 300/s: p50 ≤ 3 ms, p99 ≤ 10 ms | p50 1.5 ms, p99 3.0 ms | met |",
        "| decide ≥ 2,000/s with p99 ≤ 50 ms | 2,500/s open loop | met |",
        "| decide ≥ 40% of the trivial view's ceiling, same middleware | wrk: 3,813 vs 5,753 requests/s = 66% | met |",
        "| ≥ 20,000 batched rewards/s | 38,111/s | met |",
        "| ≥ 500 single rewards/s | 853/s | met |",
        "| reward → decide lag p50 ≤ 1 s, p99 ≤ 3 s at half the ingest rate | p50 0.23 s, p99 0.26 s | met |",
    ]
    assert targets_section(None, None, None) == []


def test_the_counterfactual_rows_and_target_come_from_the_results():
    rows = [
        {
            "decisions": 1_000_000,
            "arms": 5,
            "seconds": 6.04,
            "read_seconds": 3.2,
            "count_baseline_seconds": 0.051,
            "peak_mib": 410.4,
        },
        {
            "decisions": 1_000_000,
            "arms": 10,
            "seconds": 10.5,
            "read_seconds": 3.3,
            "count_baseline_seconds": 0.05,
            "peak_mib": 600.0,
        },
    ]
    lines = counterfactual_section({"rows": rows})
    assert lines[6:] == [
        "| 1,000,000 | 5 | 6.0 | 3.2 | 0.05 | 410 |",
        "| 1,000,000 | 10 | 10.5 | 3.3 | 0.05 | 600 |",
        "",
        "Target ≤ 10 s and ≤ 1 GiB at 10⁶ decisions (3–10 arms): slowest 10.5 s, peak 600 MiB — **missed**.",
    ]


def test_sections_not_re_run_are_kept_as_the_document_has_them():
    generated = "\nLast run: x\n\n### Service: a\n\n| row |\n\n### Guardrails: b\n\ntext\n\n"
    assert _kept_sections(generated) == {
        "### Service: a": ["### Service: a", "", "| row |"],
        "### Guardrails: b": ["### Guardrails: b", "", "text"],
    }


def test_the_client_rows_come_from_the_results():
    from bench.summary import client_section

    data = {
        "choose_floor": {"count": 20000, "p50_us": 0.47, "p99_us": 0.82},
        "local_decide": {"count": 20000, "p50_us": 4.0, "p99_us": 25.0, "remote_fallbacks": 0},
        "client_rewards": {"count": 200000, "per_s": 16000.0},
        "lag": {"samples": 30, "p50_s": 0.9, "p99_s": 1.0},
        "remote_decide": {"count": 2000, "p50_us": 3000.0, "p99_us": 8000.0},
        "endpoint_rewards": {"count": 250000, "per_s": 24000.0},
    }
    lines = client_section(data)
    assert lines[4:8] == [
        "| local decide at 2,000/s, p50 / p99 µs (20,000 calls, 0 fell back to remote) | 4.0 / 25.0 | `policies` `choose` alone: 0.47 / 0.82 | – |",
        "| remote decide (one HTTP call), p50 / p99 µs | 3,000 / 8,000 | local decide: 4.0 / 25.0 | 750× |",
        "| rewards/s from one client process (batched, until delivered) | 16,000 | the batched endpoint, 3 clients × 1,000 per POST: 24,000/s | 0.67 |",
        "| `reward()` → a local decision from the allocation that learned it, p50 / p99 s (30 samples) | 0.90 / 1.00 | – | – |",
    ]
    assert lines[-1] == (
        "Targets: local decide p99 ≤ 20 µs — **missed**; ≥ 10,000 rewards/s from one process — met; lag p99 ≤ 2 s — met."
    )


def test_the_long_haul_section_puts_each_figure_next_to_its_empty_table_figure():
    from bench.summary import longhaul_section

    def phase(decide_p50: float, ingest: float, rebuild_s: float, replayed: int, history: int) -> dict:
        return {
            "decide": {"p50_ms": decide_p50, "p99_ms": 2 * decide_p50},
            "batched_rewards_per_s": ingest,
            "lag": {"p50_s": 0.2, "p99_s": 0.4},
            "data_endpoint_ms": 100.0,
            "overview_ms": 200.0,
            "claim_5000_ms": 50.0,
            "rebuild": {"seconds": rebuild_s, "replayed_rewards": replayed, "history_rewards": history},
        }

    data = {
        "scale": "full",
        "experiments": 10,
        "decisions": 50_000_000,
        "rewards": 30_000_000,
        "days": 30,
        "audit": 5_000,
        "decide_rate": 300,
        "load": {"decisions_s": 600.0, "rewards_s": 400.0},
        "empty": phase(4.0, 10_000.0, 0.5, 80_000, 80_000),
        "loaded": phase(8.0, 6_000.0, 0.5, 79_000, 3_080_000),
        "loaded_sizes": {"experiments_reward": {"rows": 2_000_000, "table_bytes": 2**29, "index_bytes": 2**29}},
        "retention_day": {"seconds": 2.0, "decisions": 3_000, "rewards": 1_000, "archive_bytes": 400_000},
    }
    lines = longhaul_section(data)
    assert lines[2].startswith("10 experiments; loaded 50,000,000 decisions, 30,000,000 rewards")
    assert "in 1,000 s. Decide at 300 requests/s" in lines[2]
    assert "79,000 of 3,080,000 on the loaded month" in lines[2]
    assert lines[6] == "| decide p50 ms | 4.000 | 8.000 | 2.00 | **missed** |"
    assert lines[8] == "| batched rewards/s (3 clients × 1,000) | 10,000.000 | 6,000.000 | 0.60 | **missed** |"
    assert lines[14] == "| `rebuild_policy_state` s | 0.500 | 0.500 | 1.00 | met |"
    assert lines[18] == "| `experiments_reward` | 2,000,000 | 512 | 512 | 512 |"
    assert lines[-1] == (
        "Retention of one day of the measured experiment: 3,000 decisions and 1,000 rewards archived and "
        "dropped in 2.0 s (2,000 rows/s); the gzipped CSV archive takes 100 bytes per row."
    )


def test_the_key_table_baseline_is_the_first_ratio_when_measured():
    run = {**RUN, "copy_baselines_rows_per_s": {"temp": 600000.0, "columns": 200000.0, "indexed_with_keys": 60000.0}}
    rows = service_section(run)[4:]
    assert rows[5] == (
        "| batched rewards/s (3 clients × 1,000 per POST) | 38,111 | `COPY` into logged copies of the reward table "
        "and its key table (columns, constraints, foreign keys, every index): 60,000 rows/s | 0.635 |"
    )
    assert rows[6].startswith("| 〃 | 38,111 | `COPY` into a logged table with the reward columns")


def test_each_section_says_when_and_where_it_was_measured(tmp_path):
    results_write(tmp_path / "run.json", {"figure": 1})
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["figure"] == 1 and set(data["measured"]) == {"date", "machine"}
    stamp = {"measured": {"date": "2026-12-03", "machine": "2 × CPU, Linux 6, Python 3.11.7"}}
    assert _stamped(["### Heading", "", "| row |"], stamp) == [
        "### Heading",
        "",
        "Measured 2026-12-03 on 2 × CPU, Linux 6, Python 3.11.7.",
        "",
        "| row |",
    ]
    assert _stamped(["### Heading", "", "| row |"], {}) == ["### Heading", "", "| row |"]
