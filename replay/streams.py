"""Turn a dataset into an ordered stream with drift, train the candidate models, and score
every model on every chunk.

Census (UCI Adult): an abrupt sub-population switch. The stream first holds the married
people (``marital-status`` starting with "Married"), then everyone else, each part shuffled
with the seed. The models are trained on the first 8,000 married rows (6,000 to fit, 2,000
to validate), so the drift point is where the unmarried rows begin — the first chunk that
contains them. Measured on seed 0: gradient boosting is the best model before the switch,
logistic regression after it.

Fraud: time order. For the synthetic generator the drift point is ``Time`` = one day, when
the fraud signature changes (see :func:`replay.datasets.synthetic_fraud`); the first 30,000
transactions train (22,500) and validate (7,500) the models. A user's real
``creditcard.csv`` has no known drift point.

Models (scikit-learn): logistic regression (the *naive* strategy's designated model — the
first one trained), a depth-6 decision tree, a 40-tree random forest, histogram gradient
boosting, Gaussian naive Bayes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from replay.datasets import SYNTHETIC_FRAUD_DRIFT_TIME, Table

MODEL_NAMES = ("logistic regression", "decision tree", "random forest", "gradient boosting", "naive Bayes")
#: Fraud reward costs: a missed fraud costs 100 times a false alarm (the project's choice).
COST_FALSE_NEGATIVE = 100.0
COST_FALSE_POSITIVE = 1.0


def make_models(seed: int) -> list[Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    return [
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        DecisionTreeClassifier(max_depth=6, random_state=seed),
        RandomForestClassifier(n_estimators=40, max_depth=10, n_jobs=2, random_state=seed),
        HistGradientBoostingClassifier(max_iter=100, random_state=seed),
        make_pipeline(StandardScaler(), GaussianNB()),
    ]


@dataclass
class Stream:
    """Rows in stream order: a training window, a validation split, then chunks."""

    name: str
    kind: str  # "census" or "fraud": decides the reward
    X: np.ndarray
    y: np.ndarray
    train: slice
    validate: slice
    chunks: list[tuple[int, int]]
    drift_chunk: int | None
    synthetic: bool
    drift_note: str

    @property
    def n_chunks(self) -> int:
        return len(self.chunks)


def _chunk_bounds(start: int, stop: int, n_chunks: int) -> list[tuple[int, int]]:
    edges = np.linspace(start, stop, n_chunks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _drift_chunk(chunks: list[tuple[int, int]], drift_row: int | None) -> int | None:
    if drift_row is None:
        return None
    for index, (_, stop) in enumerate(chunks):
        if drift_row < stop:
            return index
    return None


def census_stream(table: Table, seed: int, n_chunks: int = 100, window: int = 8000) -> Stream:
    married = np.char.startswith(table.columns["marital-status"], "Married")
    rng = np.random.default_rng(seed)
    first, second = np.flatnonzero(married), np.flatnonzero(~married)
    rng.shuffle(first)
    rng.shuffle(second)
    order = np.concatenate([first, second])
    chunks = _chunk_bounds(window, len(order), n_chunks)
    return Stream(
        name="census",
        kind="census",
        X=table.X[order],
        y=table.y[order],
        train=slice(0, window * 3 // 4),
        validate=slice(window * 3 // 4, window),
        chunks=chunks,
        drift_chunk=_drift_chunk(chunks, len(first)),
        synthetic=False,
        drift_note="married people, then unmarried people (abrupt sub-population switch)",
    )


def fraud_stream(table: Table, n_chunks: int = 100, window: int = 30_000) -> Stream:
    X = table.X.copy()
    X[:, 0] = X[:, 0] % 86_400  # time of day: the absolute time says nothing about fraud
    drift_row = None
    if table.synthetic:
        drift_row = int(np.searchsorted(table.columns["Time"], SYNTHETIC_FRAUD_DRIFT_TIME))
    window = min(window, len(table) // 5)
    chunks = _chunk_bounds(window, len(table), n_chunks)
    return Stream(
        name=table.name,
        kind="fraud",
        X=X,
        y=table.y,
        train=slice(0, window * 3 // 4),
        validate=slice(window * 3 // 4, window),
        chunks=chunks,
        drift_chunk=_drift_chunk(chunks, drift_row),
        synthetic=table.synthetic,
        drift_note="fraud signature changes after one day" if table.synthetic else "natural time order, drift unknown",
    )


def confusion(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(true positives, false positives, false negatives, true negatives)."""
    return np.array(
        [
            np.sum((predictions == 1) & (labels == 1)),
            np.sum((predictions == 1) & (labels == 0)),
            np.sum((predictions == 0) & (labels == 1)),
            np.sum((predictions == 0) & (labels == 0)),
        ],
        dtype=np.int64,
    )


def reward(kind: str, counts: np.ndarray) -> float:
    """A chunk's reward in [0, 1] from its confusion counts.

    Census: accuracy. Fraud: one minus the normalised cost, ``1 − (100·FN + FP) /
    (100·P + N)`` — the share of the worst possible cost avoided. It is defined for a
    chunk without positives (then only false alarms cost).
    """
    tp, fp, fn, tn = (float(v) for v in counts)
    total = tp + fp + fn + tn
    if total == 0:
        raise ValueError("counts: an empty chunk has no reward")
    if kind == "census":
        return (tp + tn) / total
    worst = COST_FALSE_NEGATIVE * (tp + fn) + COST_FALSE_POSITIVE * (fp + tn)
    return 1.0 - (COST_FALSE_NEGATIVE * fn + COST_FALSE_POSITIVE * fp) / worst


@dataclass
class Scored:
    """Every model's confusion counts and reward on every chunk, plus validation scores."""

    stream: Stream
    counts: np.ndarray  # (n_models, n_chunks, 4)
    rewards: np.ndarray  # (n_models, n_chunks)
    validation: np.ndarray  # (n_models,) reward on the validation split
    # (n_models, n_requests): whether each model's prediction of each request of the chunks
    # was right — every model's exact counterfactual reward per request (off-policy checks).
    correct: np.ndarray


def train_and_score(stream: Stream, seed: int) -> Scored:
    """Fit the candidate models on the training window and score them everywhere."""
    models = make_models(seed)
    n_models = len(models)
    counts = np.zeros((n_models, stream.n_chunks, 4), dtype=np.int64)
    validation = np.zeros(n_models)
    start = stream.chunks[0][0]
    correct = np.zeros((n_models, stream.chunks[-1][1] - start), dtype=bool)
    for k, model in enumerate(models):
        model.fit(stream.X[stream.train], stream.y[stream.train])
        validation[k] = reward(
            stream.kind, confusion(model.predict(stream.X[stream.validate]), stream.y[stream.validate])
        )
        predicted = model.predict(stream.X[start:])
        correct[k] = predicted[: correct.shape[1]] == stream.y[start : start + correct.shape[1]]
        for c, (lo, hi) in enumerate(stream.chunks):
            counts[k, c] = confusion(predicted[lo - start : hi - start], stream.y[lo:hi])
    rewards = np.array([[reward(stream.kind, counts[k, c]) for c in range(stream.n_chunks)] for k in range(n_models)])
    return Scored(stream=stream, counts=counts, rewards=rewards, validation=validation, correct=correct)
