"""Run the study's seeds in worker processes and gather them per dataset, scenario and routing.

One task is one (dataset, scenario, seed): build the stream from the stream seed, train and
score the models, inject the fault of the ``break`` scenario, and replay every strategy under
every routing and rollback mode. Tasks are independent, so they run in a process pool
(``jobs`` workers); results are gathered in seed order, so the output does not depend on
``jobs``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from replay import cache
from replay.datasets import DATA_DIR, Table, load_adult, load_creditcard, synthetic_fraud
from replay.streams import MODEL_NAMES, Scored, break_model, census_stream, fraud_stream, train_and_score
from replay.study import Run, SeedRuns, run_seed, seeds

SCENARIOS = ("drift", "break")
#: The break scenario's default fault: this share of the chunks are healthy first.
BREAK_SHARE = 0.3


@dataclass(frozen=True)
class Settings:
    """What every task needs to know (picklable, sent to the workers)."""

    strategies: tuple[str, ...]
    routings: tuple[str, ...]
    rollbacks: tuple[str, ...]
    chunks: int = 100
    break_at: int | None = None  # default: BREAK_SHARE of the chunks
    fraud_rows: int = 150_000
    adult_dir: Path | None = None
    fraud_csv: Path | None = None
    cache: Path | None = None  # a directory of scored streams (replay.cache); None: always train

    @property
    def break_chunk(self) -> int:
        return self.break_at if self.break_at is not None else round(BREAK_SHARE * self.chunks)


@dataclass
class Result:
    """Every strategy on every seed of one dataset, scenario, routing and rollback mode."""

    name: str
    scenario: str
    routing: str
    rollback: str
    synthetic: bool
    drift_note: str
    n_chunks: int
    model_names: tuple[str, ...]
    seeds: list[int] = field(default_factory=list)
    runs: dict[str, list[Run]] = field(default_factory=dict)  # strategy → one run per seed
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    model_rewards: list[np.ndarray] = field(default_factory=list)  # per seed: (n_models, n_chunks)
    chunk_sizes: list[np.ndarray] = field(default_factory=list)
    change_chunks: list[int | None] = field(default_factory=list)
    broken: list[tuple[int, int] | None] = field(default_factory=list)
    naive_models: list[int] = field(default_factory=list)

    @property
    def change_chunk(self) -> int | None:
        """The change point of most seeds (the drift or the fault)."""
        known = [c for c in self.change_chunks if c is not None]
        return int(np.bincount(known).argmax()) if known else None

    def table(self) -> list[dict[str, Any]]:
        """One row per strategy: means over seeds of every numeric column."""
        table = []
        for strategy, rows in self.rows.items():
            row: dict[str, Any] = {"strategy": strategy}
            for key, value in rows[0].items():
                if key != "strategy" and isinstance(value, (int, float, bool)):
                    row[key] = float(np.mean([r[key] for r in rows]))
            table.append(row)
        return table


@functools.cache
def _adult(directory: Path | None) -> Table:
    return load_adult(directory)


@functools.cache
def _creditcard(path: Path) -> Table:
    return load_creditcard(path)


def scored_stream(dataset: str, scenario: str, seed: int, settings: Settings) -> Scored:
    """One seed's stream, trained and scored (or from the cache), with the scenario's fault injected."""
    stream_seed, _ = seeds(seed)
    digest, scored = None, None
    if settings.cache is not None:
        digest = cache.key(
            {"dataset": dataset, "drift": scenario == "drift", "seed": stream_seed, "chunks": settings.chunks}
            | ({"fraud_rows": settings.fraud_rows} if dataset == "fraud" and settings.fraud_csv is None else {}),
            _data_files(dataset, settings),
        )
        scored = cache.load(settings.cache, digest)
    if digest is None or scored is None:
        scored = _train(dataset, scenario == "drift", stream_seed, settings)
        if settings.cache is not None and digest is not None:
            cache.save(settings.cache, digest, scored)
    if scenario == "break":
        chunk = settings.break_chunk
        healthy = scored.rewards[:, :chunk] @ np.diff(scored.offsets)[:chunk]
        scored = break_model(scored, int(np.argmax(healthy)), chunk)  # the model a good strategy serves
    return scored


def _data_files(dataset: str, settings: Settings) -> list[Path]:
    if dataset == "census":
        directory = settings.adult_dir or DATA_DIR / "adult"
        return [directory / "adult.data.gz", directory / "adult.test.gz"]
    return [settings.fraud_csv] if settings.fraud_csv is not None else []


def _train(dataset: str, drift: bool, stream_seed: int, settings: Settings) -> Scored:
    # One thread per worker: on this 2-core machine scikit-learn's OpenMP/BLAS threads made
    # training a census stream 2.2x slower (4.5 s vs 2.0 s) even with a single worker, and the
    # study already keeps every core busy with one process each.
    with threadpool_limits(1):
        return _train_unlimited(dataset, drift, stream_seed, settings)


def _train_unlimited(dataset: str, drift: bool, stream_seed: int, settings: Settings) -> Scored:
    if dataset == "census":
        stream = census_stream(_adult(settings.adult_dir), stream_seed, n_chunks=settings.chunks, drift=drift)
    elif settings.fraud_csv is not None:
        stream = fraud_stream(_creditcard(settings.fraud_csv), n_chunks=settings.chunks)
    else:
        table = synthetic_fraud(n_rows=settings.fraud_rows, seed=stream_seed, drift=drift)
        stream = fraud_stream(table, n_chunks=settings.chunks)
    return train_and_score(stream, stream_seed)


def _task(dataset: str, scenario: str, seed: int, settings: Settings) -> dict[str, SeedRuns]:
    scored = scored_stream(dataset, scenario, seed, settings)
    return {
        rollback: run_seed(scored, seed, settings.strategies, settings.routings, rollback)
        for rollback in settings.rollbacks
    }


def run_study(
    datasets: Sequence[str],
    scenarios: Sequence[str],
    n_seeds: int,
    settings: Settings,
    *,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[Result]:
    """Every dataset × scenario × seed; one :class:`Result` per dataset, scenario, routing, rollback."""
    tasks = [(d, s, seed) for d in datasets for s in scenarios for seed in range(n_seeds)]
    results: dict[tuple[str, str, str, str], Result] = {}
    for (dataset, scenario, seed), by_rollback in zip(tasks, _map(tasks, settings, jobs), strict=True):
        for rollback, seed_runs in by_rollback.items():
            for routing in settings.routings:
                key = (dataset, scenario, routing, rollback)
                if key not in results:
                    results[key] = _empty_result(seed_runs, scenario, routing, rollback, settings)
                _add(results[key], seed_runs, routing)
        if progress:
            progress(f"{dataset} {scenario} seed {seed}")
    return list(results.values())


def _map(tasks: list[tuple[str, str, int]], settings: Settings, jobs: int) -> Iterator[dict[str, SeedRuns]]:
    if jobs <= 1:
        return (_task(d, s, seed, settings) for d, s, seed in tasks)
    pool = ProcessPoolExecutor(max_workers=jobs)
    futures = [pool.submit(_task, d, s, seed, settings) for d, s, seed in tasks]

    def gather() -> Iterator[dict[str, SeedRuns]]:
        try:
            for future in futures:
                yield future.result()
        finally:
            pool.shutdown(cancel_futures=True)

    return gather()


def _empty_result(first: SeedRuns, scenario: str, routing: str, rollback: str, settings: Settings) -> Result:
    """A result to collect seeds in, described by its first seed's stream."""
    return Result(
        name=first.stream_name,
        scenario=scenario,
        routing=routing,
        rollback=rollback,
        synthetic=first.synthetic,
        drift_note=first.description,
        n_chunks=settings.chunks,
        model_names=MODEL_NAMES,
    )


def _add(result: Result, seed_runs: SeedRuns, routing: str) -> None:
    result.seeds.append(seed_runs.seed)
    for (run_routing, strategy), run in seed_runs.runs.items():
        if run_routing == routing:
            result.runs.setdefault(strategy, []).append(run)
            result.rows.setdefault(strategy, []).append(seed_runs.rows[run_routing, strategy])
    result.model_rewards.append(seed_runs.model_rewards)
    result.chunk_sizes.append(seed_runs.chunk_sizes)
    result.change_chunks.append(seed_runs.change_chunk)
    result.broken.append(seed_runs.broken)
    result.naive_models.append(seed_runs.naive_model)
