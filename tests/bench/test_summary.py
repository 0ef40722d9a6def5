"""docs/BENCHMARKS.md rows are rendered from the results, ratios computed from them."""

from __future__ import annotations

from bench.summary import service_section

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
    "copy_baseline_rows_per_s": 676826.0,
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
        "| batched rewards/s (3 clients × 1,000 per POST) | 38,111 | raw `COPY`: 676,826 rows/s | 0.056 |",
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
    assert len(rows) == 5
    assert rows[2] == "| single reward POSTs/s (6 clients, each committed before the answer) | 853 | – | – |"
