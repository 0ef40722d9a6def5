"""Datasets for the replay study: UCI Adult (census income) and credit-card fraud.

Every loader returns a :class:`Table`: a numeric feature matrix, 0/1 labels, feature names
and the raw columns needed to build a drifting stream. Files are read from the project's
own ``data/`` folder (or a path the user gives); nothing is downloaded. Bad or missing
files raise :class:`DatasetError` with a message that says what is wrong and where.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]
ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
ADULT_CATEGORICAL = [c for c in ADULT_COLUMNS[:-1] if c not in ADULT_NUMERIC]
FRAUD_COLUMNS = ["Time", *[f"V{i}" for i in range(1, 29)], "Amount", "Class"]


class DatasetError(ValueError):
    """A data file is missing or not in the expected format."""


@dataclass
class Table:
    """Features ``X`` (float64), labels ``y`` (0/1) and what the stream builder needs."""

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    synthetic: bool = False
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    drifts: bool = False  # a synthetic stream with a known drift at SYNTHETIC_FRAUD_DRIFT_TIME

    def __len__(self) -> int:
        return len(self.y)


# --------------------------------------------------------------------------- adult
def _adult_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found (the UCI Adult files ship in data/adult/)")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: not a readable gzip text file ({error})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(ADULT_COLUMNS):
            raise DatasetError(
                f"{path}:{number}: expected {len(ADULT_COLUMNS)} comma-separated fields, got {len(cells)}"
            )
        rows.append(cells)
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    return rows


def load_adult(directory: Path | str | None = None) -> Table:
    """UCI Adult, training and test splits together (48,842 rows), one-hot encoded.

    Label: income ``>50K`` (1) or ``<=50K`` (0); the test split's trailing periods are
    removed. Missing values (``?``) become their own category.
    """
    directory = Path(directory) if directory else DATA_DIR / "adult"
    rows = _adult_rows(directory / "adult.data.gz") + _adult_rows(directory / "adult.test.gz")
    columns = {name: np.array([row[i] for row in rows]) for i, name in enumerate(ADULT_COLUMNS)}
    labels = np.char.rstrip(columns.pop("income"), ".")
    unknown = sorted(set(labels) - {"<=50K", ">50K"})
    if unknown:
        raise DatasetError(f"{directory}: unexpected income label {unknown[0]!r}")
    y = (labels == ">50K").astype(np.int64)
    numeric = {}
    for name in ADULT_NUMERIC:
        try:
            numeric[name] = columns[name].astype(np.float64)
        except ValueError:
            raise DatasetError(f"{directory}: column {name!r} holds a non-numeric value") from None
    blocks, names = [np.column_stack([numeric[n] for n in ADULT_NUMERIC])], list(ADULT_NUMERIC)
    for name in ADULT_CATEGORICAL:
        levels = sorted(set(columns[name]))
        blocks.append((columns[name][:, None] == np.array(levels)[None, :]).astype(np.float64))
        names += [f"{name}={level}" for level in levels]
    columns.update(numeric)
    return Table("census", np.hstack(blocks), y, names, synthetic=False, columns=columns)


# --------------------------------------------------------------------------- fraud
def synthetic_fraud(n_rows: int = 150_000, seed: int = 0, fraud_rate: float = 0.0017, drift: bool = True) -> Table:
    """A deterministic synthetic stream in the ULB credit-card fraud schema. **Synthetic.**

    ``Time`` runs over two days (seconds, increasing); ``V1``..``V28`` are standard-normal
    "PCA components" for legitimate transactions; ``Amount`` is log-normal. A fraction
    ``fraud_rate`` (0.17%, as in the real data) are frauds, whose components are shifted
    along a fraud signature. The drift: from the middle of the stream (``Time`` ≥ one day,
    :data:`SYNTHETIC_FRAUD_DRIFT_TIME`) fraudsters change tactics — the two most telling
    components (``V12``, ``V14``) move the *other* way, and fraud amounts triple. Models
    that add the evidence up linearly (logistic regression, Gaussian naive Bayes, the best
    on the first day) now see those frauds as extra legitimate; the tree models, which
    split on the other components too, keep catching some and become the best — the best
    model changes at the drift (``tests/replay/test_streams.py`` checks it per seed, and
    ``docs/REPRODUCTION.md`` reports it for every seed of the study). ``drift=False`` keeps
    the first day's signature and amounts for both days (a stationary stream, the same
    random draws otherwise).
    """
    rng = np.random.default_rng(seed)
    time = np.sort(rng.uniform(0, 2 * 86_400, n_rows))
    y = (rng.random(n_rows) < fraud_rate).astype(np.int64)
    X = rng.standard_normal((n_rows, 28))
    amount = np.round(rng.lognormal(3.5, 1.2, n_rows), 2)
    late = (time >= SYNTHETIC_FRAUD_DRIFT_TIME) & drift
    early_signature = np.zeros(28)
    early_signature[[0, 2, 3, 9, 11, 13]] = [-2.5, -2.0, 2.2, -1.8, -2.4, -3.0]
    # After the drift fraudsters reverse the two most telling components (see the docstring).
    late_signature = early_signature.copy()
    late_signature[[11, 13]] *= -1.0
    frauds = y == 1
    X[frauds & ~late] += early_signature * rng.uniform(0.6, 1.4, ((frauds & ~late).sum(), 1))
    X[frauds & late] += late_signature * rng.uniform(0.6, 1.4, ((frauds & late).sum(), 1))
    amount[frauds & late] = np.round(amount[frauds & late] * 3.0, 2)
    features = np.column_stack([time, X, amount])
    names = FRAUD_COLUMNS[:-1]
    return Table("fraud (synthetic)", features, y, names, synthetic=True, columns={"Time": time}, drifts=drift)


SYNTHETIC_FRAUD_DRIFT_TIME = 86_400.0


def load_creditcard(path: Path | str) -> Table:
    """A user-supplied ``creditcard.csv`` in the ULB schema (header row required).

    Rows are sorted by ``Time`` (the data's natural order). Raises :class:`DatasetError`
    for a missing file, a wrong header, a non-numeric cell or a ``Class`` other than 0/1.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(io.StringIO(handle.read()))
        header = [name.strip().strip('"') for name in next(reader, [])]
        if header != FRAUD_COLUMNS:
            raise DatasetError(f"{path}: header must be {','.join(FRAUD_COLUMNS)}")
        rows = []
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(FRAUD_COLUMNS):
                raise DatasetError(f"{path}:{number}: expected {len(FRAUD_COLUMNS)} fields, got {len(row)}")
            try:
                rows.append([float(cell.strip().strip('"')) for cell in row])
            except ValueError:
                raise DatasetError(f"{path}:{number}: every field must be a number") from None
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    data = np.array(rows)
    labels = data[:, -1]
    if not np.isin(labels, [0, 1]).all():
        raise DatasetError(f"{path}: Class must be 0 or 1")
    data = data[np.argsort(data[:, 0], kind="stable")]
    return Table(
        "fraud (creditcard.csv)",
        data[:, :-1],
        data[:, -1].astype(np.int64),
        FRAUD_COLUMNS[:-1],
        synthetic=False,
        columns={"Time": data[:, 0]},
    )
