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
from dataclasses import dataclass, field
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
        RandomForestClassifier(n_estimators=40, max_depth=10, n_jobs=1, random_state=seed),
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


def census_stream(table: Table, seed: int, n_chunks: int = 100, window: int = 8000, drift: bool = True) -> Stream:
    """The census stream; ``drift=False`` shuffles everyone together (a stationary stream)."""
    rng = np.random.default_rng(seed)
    if drift:
        married = np.char.startswith(table.columns["marital-status"], "Married")
        first, second = np.flatnonzero(married), np.flatnonzero(~married)
        rng.shuffle(first)
        rng.shuffle(second)
        order, drift_row = np.concatenate([first, second]), len(first)
        note = "married people, then unmarried people (abrupt sub-population switch)"
    else:
        order, drift_row = rng.permutation(len(table)), None
        note = "everyone shuffled together"
    chunks = _chunk_bounds(window, len(order), n_chunks)
    return Stream(
        name="census",
        kind="census",
        X=table.X[order],
        y=table.y[order],
        train=slice(0, window * 3 // 4),
        validate=slice(window * 3 // 4, window),
        chunks=chunks,
        drift_chunk=_drift_chunk(chunks, drift_row),
        synthetic=False,
        drift_note=note,
    )


def fraud_stream(table: Table, n_chunks: int = 100, window: int = 30_000) -> Stream:
    X = table.X.copy()
    X[:, 0] = X[:, 0] % 86_400  # time of day: the absolute time says nothing about fraud
    drift_row = None
    if table.synthetic and table.drifts:
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
        drift_note=_fraud_drift_note(table),
    )


def _fraud_drift_note(table: Table) -> str:
    if not table.synthetic:
        return "natural time order, drift unknown"
    return "fraud signature changes after one day" if table.drifts else "one fraud signature throughout"


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


def request_rewards(kind: str, predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each request's reward in [0, 1] (any leading axes of ``predictions`` broadcast).

    Census: 1 for a right prediction, 0 for a wrong one. Fraud: one minus the request's cost
    over the largest a request can cost — a missed fraud costs 100 (reward 0), a false
    alarm 1 (reward 0.99), a right answer nothing (reward 1).
    """
    if kind == "census":
        return np.asarray(predictions == labels, dtype=np.float64)
    missed = (predictions == 0) & (labels == 1)
    false_alarm = (predictions == 1) & (labels == 0)
    cost = COST_FALSE_NEGATIVE * missed + COST_FALSE_POSITIVE * false_alarm
    return np.asarray(1.0 - cost / COST_FALSE_NEGATIVE, dtype=np.float64)


def reward(kind: str, counts: np.ndarray) -> float:
    """The mean request reward of a chunk from its confusion counts.

    Census: accuracy. Fraud: ``1 − (100·FN + FP) / (100·n)`` — the mean of the per-request
    rewards of :func:`request_rewards`, defined whether or not the chunk holds a fraud.
    """
    tp, fp, fn, tn = (float(v) for v in counts)
    total = tp + fp + fn + tn
    if total == 0:
        raise ValueError("counts: an empty chunk has no reward")
    if kind == "census":
        return (tp + tn) / total
    return 1.0 - (COST_FALSE_NEGATIVE * fn + COST_FALSE_POSITIVE * fp) / (COST_FALSE_NEGATIVE * total)


@dataclass
class Scored:
    """Every model's prediction of every request of the chunks, and what follows from it.

    ``predictions`` (n_models, n_requests) and ``labels`` (n_requests,) cover the chunks
    only (the training window is not part of them); ``offsets`` are the chunks' request
    bounds within them. Everything else is derived: per-request rewards (every model's
    exact counterfactual reward on every request), per-chunk confusion counts and mean
    rewards. ``broken`` names the model and chunk of an injected fault, if any.
    """

    stream: Stream
    predictions: np.ndarray
    labels: np.ndarray
    validation: np.ndarray  # (n_models,) reward on the validation split
    broken: tuple[int, int] | None = None
    request_rewards: np.ndarray = field(init=False)  # (n_models, n_requests)
    counts: np.ndarray = field(init=False)  # (n_models, n_chunks, 4)
    rewards: np.ndarray = field(init=False)  # (n_models, n_chunks): mean request reward
    offsets: np.ndarray = field(init=False)  # (n_chunks + 1,)

    def __post_init__(self) -> None:
        start = self.stream.chunks[0][0]
        self.offsets = np.array([lo - start for lo, _ in self.stream.chunks] + [self.stream.chunks[-1][1] - start])
        self.request_rewards = request_rewards(self.stream.kind, self.predictions, self.labels[None, :])
        positive, predicted = self.labels[None, :] == 1, self.predictions == 1
        per_request = np.stack(
            [predicted & positive, predicted & ~positive, ~predicted & positive, ~predicted & ~positive], axis=-1
        )
        self.counts = np.add.reduceat(per_request.astype(np.int64), self.offsets[:-1], axis=1)
        self.rewards = np.add.reduceat(self.request_rewards, self.offsets[:-1], axis=1) / np.diff(self.offsets)

    @property
    def correct(self) -> np.ndarray:
        """(n_models, n_requests): whether each model's prediction of each request was right."""
        return np.asarray(self.predictions == self.labels[None, :])

    @property
    def n_models(self) -> int:
        return int(self.predictions.shape[0])

    @property
    def change_chunk(self) -> int | None:
        """Where the stream changes: the injected fault, else the population drift."""
        return self.broken[1] if self.broken else self.stream.drift_chunk

    def segments(self) -> list[tuple[int, int]]:
        """Chunk ranges between changes (one range for a stationary stream)."""
        return segment_bounds(self.change_chunk, self.stream.n_chunks)

    @property
    def description(self) -> str:
        """What the stream holds, in words: its drift and, if any, the injected fault."""
        if self.broken is None:
            return self.stream.drift_note
        fault = "answers >50K for everyone" if self.stream.kind == "census" else "flags every transaction"
        return f"{self.stream.drift_note}; the best model breaks ({fault})"


def segment_bounds(change: int | None, n_chunks: int) -> list[tuple[int, int]]:
    """The chunk ranges before and after ``change`` (one range without a change)."""
    return [(0, change), (change, n_chunks)] if change else [(0, n_chunks)]


def train_and_score(stream: Stream, seed: int) -> Scored:
    """Fit the candidate models on the training window and predict every request of the chunks."""
    models = make_models(seed)
    validation = np.zeros(len(models))
    start, stop = stream.chunks[0][0], stream.chunks[-1][1]
    predictions = np.zeros((len(models), stop - start), dtype=np.int8)
    for k, model in enumerate(models):
        model.fit(stream.X[stream.train], stream.y[stream.train])
        validation[k] = reward(
            stream.kind, confusion(model.predict(stream.X[stream.validate]), stream.y[stream.validate])
        )
        predictions[k] = model.predict(stream.X[start:stop])
    return Scored(
        stream=stream, predictions=predictions, labels=stream.y[start:stop].astype(np.int8), validation=validation
    )


def break_model(scored: Scored, model: int, chunk: int) -> Scored:
    """The same stream with ``model`` broken from ``chunk`` on: it answers "positive" to every
    request (census: ">50K" for everyone; fraud: every transaction flagged) — a broken feature
    pipeline, the failure rollback exists for. The other models are untouched."""
    if not 0 < chunk < scored.stream.n_chunks:
        raise ValueError(f"chunk: must be in [1, {scored.stream.n_chunks}), got {chunk}")
    predictions = scored.predictions.copy()
    predictions[model, scored.offsets[chunk] :] = 1
    return Scored(scored.stream, predictions, scored.labels, scored.validation, broken=(model, chunk))
