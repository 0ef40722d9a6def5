"""Dataset loaders: the shipped UCI Adult copy, the synthetic fraud generator, a user's CSV."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from replay.datasets import (
    FRAUD_COLUMNS,
    SYNTHETIC_FRAUD_DRIFT_TIME,
    DatasetError,
    load_adult,
    load_creditcard,
    synthetic_fraud,
)


def test_adult_is_read_from_the_projects_own_copy():
    table = load_adult()
    assert (len(table), int(table.y.sum())) == (48_842, 11_687)  # 23.9% earn >50K
    assert table.X.shape == (48_842, 108) and table.X.dtype == np.float64
    assert table.feature_names[:6] == [
        "age",
        "fnlwgt",
        "education-num",
        "capital-gain",
        "capital-loss",
        "hours-per-week",
    ]
    assert "workclass=?" in table.feature_names  # missing values are a category of their own
    assert not table.synthetic


def test_adult_errors_say_what_and_where(tmp_path):
    with pytest.raises(
        DatasetError, match=r"adult.data.gz: file not found \(the UCI Adult files ship in data/adult/\)"
    ):
        load_adult(tmp_path)
    (tmp_path / "adult.data.gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match=r"adult.data.gz: not a readable gzip text file"):
        load_adult(tmp_path)
    with gzip.open(tmp_path / "adult.data.gz", "wt") as handle:
        handle.write("39, State-gov, 77516\n")
    with pytest.raises(DatasetError, match=r"adult.data.gz:1: expected 15 comma-separated fields, got 3"):
        load_adult(tmp_path)


def test_synthetic_fraud_is_deterministic_imbalanced_and_drifts_after_one_day():
    a, b = synthetic_fraud(n_rows=20_000, seed=3), synthetic_fraud(n_rows=20_000, seed=3)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert a.synthetic and a.name == "fraud (synthetic)" and a.feature_names == FRAUD_COLUMNS[:-1]
    assert int(synthetic_fraud(seed=0).y.sum()) == 289  # 0.19% of 150,000 (0.17% expected)
    time = a.columns["Time"]
    assert np.all(np.diff(time) >= 0) and time[0] >= 0 and time[-1] < 2 * 86_400
    frauds = a.y == 1
    early, late = frauds & (time < SYNTHETIC_FRAUD_DRIFT_TIME), frauds & (time >= SYNTHETIC_FRAUD_DRIFT_TIME)
    # V14 and V12 (columns 14, 12) carry the strongest early signature, reversed after the drift.
    assert a.X[early, 14].mean() < -2.0 and a.X[late, 14].mean() > 2.0
    assert a.X[early, 12].mean() < -1.5 and a.X[late, 12].mean() > 1.5
    # Fraud amounts triple; legitimate ones do not change.
    amount = a.X[:, -1]
    assert amount[late].mean() > 2 * amount[early].mean()


def write_csv(path, X, y):
    with path.open("w") as handle:
        handle.write(",".join(f'"{h}"' for h in FRAUD_COLUMNS) + "\n")
        for row, label in zip(X, y, strict=True):
            handle.write(",".join(repr(float(v)) for v in row) + f',"{int(label)}"\n')


def test_a_real_creditcard_csv_is_loaded_in_time_order(tmp_path):
    table = synthetic_fraud(n_rows=2_000, seed=5)
    shuffled = np.random.default_rng(0).permutation(2_000)
    X, y = table.X[shuffled], table.y[shuffled]
    path = tmp_path / "creditcard.csv"
    write_csv(path, X, y)
    loaded = load_creditcard(path)
    order = np.argsort(X[:, 0], kind="stable")
    assert np.array_equal(loaded.X, X[order]) and np.array_equal(loaded.y, y[order])
    assert not loaded.synthetic and loaded.name == "fraud (creditcard.csv)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Time,V1\n0,1\n", "header must be Time,V1,"),
        (",".join(FRAUD_COLUMNS) + "\n" + ",".join(["0"] * 30) + ",2\n", "Class must be 0 or 1"),
        (",".join(FRAUD_COLUMNS) + "\n" + ",".join(["x"] * 31) + "\n", ":2: every field must be a number"),
        (",".join(FRAUD_COLUMNS) + "\n1,2\n", ":2: expected 31 fields, got 2"),
        (",".join(FRAUD_COLUMNS) + "\n", "no data rows"),
    ],
)
def test_bad_creditcard_files_are_refused(tmp_path, content, message):
    path = tmp_path / "creditcard.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_creditcard(path)
    with pytest.raises(DatasetError, match="file not found"):
        load_creditcard(tmp_path / "missing.csv")
