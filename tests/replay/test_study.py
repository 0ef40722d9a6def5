"""The replay core: exact behaviour on hand-made rewards, determinism on real data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from replay.streams import Scored, Stream
from replay.study import TRADITIONAL, classification_metrics, run_dataset, run_strategy, summarize

ROOT = Path(__file__).resolve().parents[2]


def scored(rewards: list[list[float]], validation=(0.5, 0.9, 0.7), kind="census") -> Scored:
    rewards_arr = np.array(rewards)
    n_models, n_chunks = rewards_arr.shape
    stream = Stream(
        "toy",
        kind,
        np.zeros((1, 1)),
        np.zeros(1),
        slice(0, 0),
        slice(0, 0),
        [(i, i + 1) for i in range(n_chunks)],
        None,
        False,
        "none",
    )
    counts = np.zeros((n_models, n_chunks, 4), dtype=np.int64)
    counts[..., 0] = (rewards_arr * 100).round()  # true positives
    counts[..., 3] = 100 - counts[..., 0]  # true negatives (the rest of 200 are errors)
    counts[..., 1] = 50
    counts[..., 2] = 50
    correct = np.zeros((n_models, n_chunks), dtype=bool)
    return Scored(stream=stream, counts=counts, rewards=rewards_arr, validation=np.array(validation), correct=correct)


FLAT = [[0.6] * 20, [0.8] * 20, [0.7] * 20]


def test_naive_serves_the_first_model_and_validation_the_best_validated():
    naive = run_strategy("naive", scored(FLAT), seed=0, rollback=False)
    assert naive.arms.tolist() == [0] * 20 and naive.rewards.sum() == pytest.approx(12.0)
    assert naive.regret == pytest.approx(20 * 0.2) and naive.switches == 0
    validation = run_strategy("validation", scored(FLAT), seed=0, rollback=False)
    assert validation.arms.tolist() == [1] * 20 and validation.regret == 0.0


def test_ab_test_explores_its_budget_then_commits_to_the_best():
    run = run_strategy("ab_test", scored(FLAT), seed=0, rollback=False)
    assert set(run.arms[10:].tolist()) == {1}  # committed after the 10-chunk budget
    assert len(set(run.arms[:10].tolist())) > 1


def test_rollback_moves_a_traditional_strategy_off_a_model_that_drops():
    dropping = [[0.9] * 10 + [0.2] * 10, [0.8] * 20, [0.7] * 20]
    without = run_strategy("naive", scored(dropping), seed=0, rollback=False)
    with_rollback = run_strategy("naive", scored(dropping), seed=0, rollback=True)
    assert without.arms.tolist() == [0] * 20
    ((chunk, model, rule),) = with_rollback.rollbacks
    assert (model, rule) == (0, "page_hinkley") and 10 <= chunk <= 12
    assert with_rollback.arms[chunk + 1 :].tolist() == [1] * (19 - chunk)  # the next active model
    assert with_rollback.rewards.sum() > without.rewards.sum()


def test_summary_and_served_metrics():
    run = run_strategy("validation", scored(FLAT), seed=0, rollback=False)
    summary = summarize(run, scored(FLAT))
    assert summary["best_model_share"] == 1.0 and summary["cumulative_reward"] == pytest.approx(16.0)
    metrics = classification_metrics(scored(FLAT), run.arms)
    # Each served chunk: 80 TP, 50 FP, 50 FN, 20 TN.
    assert metrics == {"accuracy": 0.5, "precision": 80 / 130, "recall": 80 / 130, "f1": pytest.approx(80 / 130)}
    fraud = classification_metrics(scored(FLAT, kind="fraud"), run.arms)
    assert fraud["cost"] == 20 * (100 * 50 + 50)


def test_same_inputs_same_table_for_every_strategy():
    inputs = [scored(np.random.default_rng(s).random((3, 30)).tolist()) for s in range(2)]
    first, second = run_dataset(inputs), run_dataset(inputs)
    assert first.table() == second.table()
    assert [row["strategy"] for row in first.table()][:3] == list(TRADITIONAL)
    with pytest.raises(ValueError, match="rollback: must be traditional, all or none"):
        run_dataset(inputs, rollback="sometimes")


def test_the_paired_text_compares_every_strategy_with_the_best():
    from replay.report import paired_text

    inputs = [scored([[0.6 + 0.01 * s] * 20, [0.8] * 20, [0.7] * 20]) for s in range(3)]
    text = paired_text(run_dataset(inputs, ["naive", "validation"]))
    naive = np.mean([0.6, 0.61, 0.62])
    validation = 0.8
    assert (
        text.splitlines()[0] == "mean reward minus validation-based's, paired over seeds (95 % interval; * excludes 0):"
    )
    assert text.splitlines()[1].split()[:2] == ["naive", f"−{validation - naive:.4f}"]
    assert text.endswith("*")


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
def test_a_small_study_end_to_end_is_deterministic(tmp_path):
    def run(name):
        out = tmp_path / f"{name}.json"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "replay",
                "--seeds",
                "2",
                "--chunks",
                "20",
                "--fraud-rows",
                "20000",
                "--quiet",
                "--json",
                str(out),
                "--html",
                str(tmp_path / f"{name}.html"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={"PATH": "", "PYTHONPATH": str(ROOT)},
        )
        assert result.returncode == 0, result.stderr
        return json.loads(out.read_text()), result.stdout

    (first, stdout), (second, _) = run("a"), run("b")
    assert [d["table"] for d in first["datasets"]] == [d["table"] for d in second["datasets"]]
    census, fraud = first["datasets"]
    assert census["drift_chunk"] == 7 and fraud["name"] == "fraud (synthetic)"
    assert [row["strategy"] for row in census["table"]][:6] == [
        "naive",
        "validation",
        "ab_test",
        "epsilon_greedy",
        "ucb1",
        "thompson",
    ]
    assert "fraud (synthetic) — drift: fraud signature changes after one day" in stdout
    assert stdout.count("paired over seeds (95 % interval; * excludes 0)") == 2
    pairs = census["paired_mean_reward"]
    assert len(pairs) == 8 * 7 // 2 and (pairs[0]["first"], pairs[0]["second"], pairs[0]["seeds"]) == (
        "naive",
        "validation",
        2,
    )
    assert "Plotly" in (tmp_path / "a.html").read_text()[:5_000_000]


def test_a_missing_data_file_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "replay", "--datasets", "fraud", "--fraud-csv", str(tmp_path / "nope.csv"), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1 and result.stderr.strip() == f"replay: {tmp_path / 'nope.csv'}: file not found"
