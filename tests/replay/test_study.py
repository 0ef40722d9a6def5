"""The replay core: exact behaviour on hand-made streams, determinism on real data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from replay.report import horizon_regret, markdown_table, summarize_result
from replay.runner import Result, _add
from replay.streams import Scored, Stream, break_model
from replay.study import (
    STRATEGIES,
    baselines,
    classification_metrics,
    naive_model,
    run_seed,
    run_strategy,
    seeds,
    summarize,
)

ROOT = Path(__file__).resolve().parents[2]
SIZE = 100  # requests per chunk


def toy(accuracy, validation=(0.5, 0.9, 0.7), kind="census") -> Scored:
    """Model k gets exactly ``accuracy[k][c]`` of chunk c's requests right (every label
    positive), at seeded random places within the chunk (as in a shuffled stream)."""
    acc = np.asarray(accuracy, dtype=float)
    n_models, n_chunks = acc.shape
    labels = np.ones(n_chunks * SIZE, dtype=np.int8)
    predictions = np.zeros((n_models, n_chunks * SIZE), dtype=np.int8)
    rng = np.random.default_rng(0)
    for k in range(n_models):
        for c in range(n_chunks):
            right = rng.permutation(SIZE)[: round(acc[k, c] * SIZE)]
            predictions[k, c * SIZE + right] = 1
    chunks = [(c * SIZE, (c + 1) * SIZE) for c in range(n_chunks)]
    stream = Stream(
        "toy", kind, np.zeros((n_chunks * SIZE, 1)), labels, slice(0, 0), slice(0, 0), chunks, None, False, "none"
    )
    return Scored(stream, predictions, labels, np.array(validation))


FLAT = [[0.6] * 20, [0.8] * 20, [0.7] * 20]


def test_chunk_rewards_are_the_requests_mean_and_every_request_is_learned():
    scored = toy(FLAT)
    assert scored.rewards.tolist() == FLAT and scored.request_rewards.shape == (3, 20 * SIZE)
    for routing in ("chunk", "request"):
        run = run_strategy("thompson", scored, 7, routing=routing, rollback=False)
        # A chunk counts as its 100 observations, not as one coin flip.
        assert run.learned == 20 * SIZE and run.served.sum() == 20 * SIZE
        assert run.served.sum(axis=1).tolist() == [SIZE] * 20


def test_naive_serves_its_designated_model_and_validation_the_best_validated():
    naive = run_strategy("naive", toy(FLAT), 0, routing="request", rollback=False, naive_arm=2)
    assert naive.served[:, 2].sum() == 20 * SIZE and naive.rewards.sum() == pytest.approx(14.0)
    assert naive.switches == 0
    validation = run_strategy("validation", toy(FLAT), 0, routing="chunk", rollback=False)
    assert validation.arms.tolist() == [1] * 20
    assert summarize(validation, toy(FLAT))["regret_fixed"] == 0.0
    assert summarize(naive, toy(FLAT))["regret_fixed"] == pytest.approx(20 * 0.1)


def test_chunk_routing_serves_one_model_per_chunk_request_routing_splits_it():
    chunk = run_strategy("ab_test", toy(FLAT), 3, routing="chunk", rollback=False)
    assert (chunk.served.max(axis=1) == SIZE).all()
    request = run_strategy("ab_test", toy(FLAT), 3, routing="request", rollback=False)
    # The A/B budget is 10 chunks: a uniform split first (every model in every chunk), then the best.
    assert (request.served[:10] > 10).all()
    assert request.served[10:, 1].tolist() == [SIZE] * 10


def test_naive_models_are_drawn_per_seed_from_a_policy_seed_independent_of_the_stream():
    pairs = [seeds(seed) for seed in range(30)]
    assert len({s for pair in pairs for s in pair}) == 60  # no stream seed is a policy seed
    assert pairs == [seeds(seed) for seed in range(30)]  # deterministic
    drawn = [naive_model(policy, 5) for _, policy in pairs]
    assert set(drawn) == {0, 1, 2, 3, 4} and drawn != [0] * 30


def test_baselines_fixed_segment_and_chunk():
    accuracy = [[0.9] * 5 + [0.5] * 5, [0.7] * 5 + [0.8] * 5, [0.6, 0.95, 0.6, 0.6, 0.6] + [0.6] * 5]
    scored = break_model(toy(accuracy), 0, 5)  # a break at chunk 5 makes two segments
    yardsticks = baselines(scored)
    # Model 0 broke: it now answers positive to every (positive) request, so its reward is 1.
    assert scored.rewards[0, 5:].tolist() == [1.0] * 5
    assert yardsticks["fixed"].tolist() == scored.rewards[0].tolist()
    assert yardsticks["segment"].tolist() == [0.9] * 5 + [1.0] * 5
    assert yardsticks["chunk"].tolist() == [0.9, 0.95, 0.9, 0.9, 0.9] + [1.0] * 5
    assert scored.segments() == [(0, 5), (5, 10)] and toy(accuracy).segments() == [(0, 10)]


def test_a_model_that_breaks_is_rolled_back_by_the_change_rule_without_false_alarms():
    healthy = [[0.9] * 40, [0.8] * 40, [0.7] * 40]
    scored = toy(healthy)
    predictions = scored.predictions.copy()
    predictions[0, 10 * SIZE :] = 0  # model 0 breaks at chunk 10: every answer wrong
    broken = Scored(scored.stream, predictions, scored.labels, scored.validation, broken=(0, 10))
    run = run_strategy("naive", broken, 0, routing="chunk", rollback=True, naive_arm=0)
    assert run.rollbacks == [(10, 0, "change")]
    assert run.arms[11:].tolist() == [1] * 29  # the next active model
    summary = summarize(run, broken)
    assert (summary["broken_served"], summary["broken_rolled_back"], summary["false_alarms"]) == (SIZE, True, 0)
    without = run_strategy("naive", broken, 0, routing="chunk", rollback=False, naive_arm=0)
    assert without.rollbacks == [] and summarize(without, broken)["broken_served"] == 30 * SIZE


def test_break_model_answers_positive_from_its_chunk_and_leaves_the_others():
    scored = toy(FLAT)
    broken = break_model(scored, 1, 4)
    assert (broken.predictions[1, 4 * SIZE :] == 1).all()
    assert np.array_equal(broken.predictions[1, : 4 * SIZE], scored.predictions[1, : 4 * SIZE])
    assert np.array_equal(broken.predictions[[0, 2]], scored.predictions[[0, 2]])
    assert broken.change_chunk == 4
    with pytest.raises(ValueError, match="chunk: must be in"):
        break_model(scored, 1, 0)


def test_served_metrics_and_fraud_cost():
    metrics = classification_metrics("fraud", np.array([80, 50, 50, 20]))
    assert metrics == {
        "accuracy": 0.5,
        "precision": 80 / 130,
        "recall": 80 / 130,
        "f1": pytest.approx(80 / 130),
        "cost": 100 * 50 + 50,
    }


def test_run_seed_is_deterministic_and_independent_of_the_other_strategies():
    scored = toy(np.random.default_rng(1).uniform(0.5, 0.9, (3, 30)))
    first = run_seed(scored, 4, STRATEGIES, ("chunk", "request"), "all")
    again = run_seed(scored, 4, STRATEGIES, ("chunk", "request"), "all")
    assert first.rows == again.rows
    alone = run_seed(scored, 4, ("thompson",), ("request",), "all")
    assert alone.rows["request", "thompson"] == first.rows["request", "thompson"]
    with pytest.raises(ValueError, match="rollback: must be one of all, traditional, none"):
        run_seed(scored, 4, STRATEGIES, ("chunk",), "sometimes")


def _result(accuracies, strategies=("naive", "validation")) -> Result:
    result = Result("toy", "drift", "chunk", "none", False, "none", 20, ("a", "b", "c"))
    for seed, accuracy in enumerate(accuracies):
        _add(result, run_seed(toy(accuracy), seed, strategies, ("chunk",), "none"), "chunk")
    return result


def test_the_table_marks_a_significant_paired_difference():
    # Naive ships a random model; validation always the best: validation wins on every seed.
    accuracies = [[[0.6 + 0.01 * s] * 20, [0.8] * 20, [0.7] * 20] for s in range(6)]
    summary = summarize_result(_result(accuracies))
    (difference,) = summary["versus_best"]
    naive_means = [accuracies[s][m][0] for s, m in enumerate(_result(accuracies).naive_models)]
    assert difference["first"] == "naive" and difference["second"] == "validation"
    assert difference["mean"] == pytest.approx(np.mean(naive_means) - 0.8)
    assert difference["significant"]
    table = markdown_table(summary)
    assert table.splitlines()[2].startswith("| naive |") and table.splitlines()[2].split("|")[3].strip().endswith("*")
    assert table.splitlines()[3].split("|")[3].strip() == "best"


def test_horizon_regret_uses_the_best_fixed_model_of_the_first_chunks():
    # Model 0 leads for 10 chunks, model 1 after: over 10 chunks the yardstick is model 0.
    accuracy = [[0.9] * 10 + [0.5] * 10, [0.7] * 10 + [0.95] * 10, [0.6] * 20]
    result = _result([accuracy], strategies=("validation",))  # validation serves model 1 throughout
    assert horizon_regret(result, 10)["validation"] == [pytest.approx(0.2)]
    assert horizon_regret(result, 20)["validation"] == [pytest.approx(0.0)]


def test_the_replay_core_imports_without_django():
    code = "import sys, replay.study, replay.cli, replay.report; print(sorted(m for m in sys.modules if m.startswith('django')))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_small_study_end_to_end_is_deterministic_whatever_the_workers_and_the_cache(tmp_path):
    def run(name, jobs):
        out = tmp_path / f"{name}.json"
        args = ["--seeds", "2", "--chunks", "20", "--fraud-rows", "20000", "--quiet", "--jobs", str(jobs)]
        args += ["--cache", str(tmp_path / "cache")]  # the first run trains and fills it, the second reads it
        result = subprocess.run(
            [sys.executable, "-m", "replay", *args, "--json", str(out), "--html", str(tmp_path / f"{name}.html")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env={"PATH": "", "PYTHONPATH": str(ROOT)},
        )
        assert result.returncode == 0, result.stderr
        return json.loads(out.read_text()), result.stdout

    (first, stdout), (second, _) = run("a", 1), run("b", 2)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2 * 2 * 2  # datasets x scenarios x seeds
    assert [r["table"] for r in first["results"]] == [r["table"] for r in second["results"]]
    keys = [(r["dataset"], r["scenario"], r["routing"], r["rollback"]) for r in first["results"]]
    assert keys == [
        (dataset, scenario, routing, rollback)
        for dataset in ("census", "fraud (synthetic)")
        for scenario in ("drift", "break")
        for rollback in ("all", "none")
        for routing in ("chunk", "request")
    ]
    census = first["results"][0]
    assert census["change_chunk"] == 7 and census["seeds"] == 2
    assert [row["strategy"] for row in census["table"]] == list(STRATEGIES)
    assert len(census["pairs"]) == 8 * 7 // 2 and census["horizon"]["chunks"] == [2, 5, 10, 20]
    breaks = [r for r in first["results"] if r["scenario"] == "break"]
    assert all(r["change_chunk"] == 6 and sum(r["broken_models"].values()) == 2 for r in breaks)
    assert {(r["dataset"], r["scenario"]): r["drift_note"] for r in first["results"]} == {
        ("census", "drift"): "married people, then unmarried people (abrupt sub-population switch)",
        ("census", "break"): "everyone shuffled together; the best model breaks (answers >50K for everyone)",
        ("fraud (synthetic)", "drift"): "fraud signature changes after one day",
        (
            "fraud (synthetic)",
            "break",
        ): "one fraud signature throughout; the best model breaks (flags every transaction)",
    }
    assert "census, break scenario, rollback: all: request- minus chunk-level routing:" in stdout
    assert "fraud (synthetic), drift scenario, request-level routing: rollback all minus rollback none:" in stdout
    assert "census, break scenario at chunk 6, request-level routing (rollback: all; 2 seeds, 20 chunks)" in stdout
    assert "Plotly" in (tmp_path / "a.html").read_text()[:5_000_000]


def test_a_missing_data_file_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "replay",
            "--datasets",
            "fraud",
            "--fraud-csv",
            str(tmp_path / "nope.csv"),
            "--quiet",
            "--no-cache",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1 and result.stderr.strip() == f"replay: {tmp_path / 'nope.csv'}: file not found"
