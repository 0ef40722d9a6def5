"""``python -m replay`` / ``python manage.py replay``: run the study, print the tables."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from replay import report
from replay.counterfactual import check_seed, coverage_table
from replay.datasets import DatasetError, load_adult, load_creditcard, synthetic_fraud
from replay.streams import Scored, census_stream, fraud_stream, train_and_score
from replay.study import STRATEGIES, run_dataset


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="replay",
        description="Chunked replay of the deployment strategies on census and fraud streams with drift.",
    )
    parse.add_argument("--datasets", nargs="+", choices=["census", "fraud"], default=["census", "fraud"])
    parse.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parse.add_argument("--chunks", type=int, default=100, help="chunks per stream (default 100)")
    parse.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parse.add_argument(
        "--rollback",
        choices=["traditional", "all", "none"],
        default="traditional",
        help="which strategies the rollback detectors act for (default: traditional)",
    )
    parse.add_argument(
        "--adult-dir", type=Path, help="folder with adult.data.gz and adult.test.gz (default data/adult)"
    )
    parse.add_argument("--fraud-csv", type=Path, help="a real creditcard.csv instead of the synthetic fraud stream")
    parse.add_argument("--fraud-rows", type=int, default=150_000, help="rows of the synthetic fraud stream")
    parse.add_argument(
        "--counterfactual",
        metavar="LOGGER",
        choices=["uniform", *STRATEGIES],
        help="also log LOGGER's traffic per request and check every off-policy estimate against the exact "
        "counterfactual (docs/COUNTERFACTUAL.md); 'uniform' logs a uniformly random split",
    )
    parse.add_argument("--json", type=Path, metavar="PATH", help="write all results as JSON")
    parse.add_argument("--html", type=Path, metavar="PATH", help="write a standalone HTML report with charts")
    parse.add_argument("--quiet", action="store_true", help="no progress bar")
    return parse


def _check(args: argparse.Namespace) -> None:
    if args.seeds < 1:
        raise SystemExit("replay: --seeds must be at least 1")
    if not 2 <= args.chunks <= 10_000:
        raise SystemExit("replay: --chunks must be between 2 and 10000")
    if args.fraud_rows < 5_000:
        raise SystemExit("replay: --fraud-rows must be at least 5000")


def _logger(name: str) -> tuple[str, dict[str, Any] | None]:
    """The logging strategy: ``uniform`` is ε-greedy with ε = 1 (a uniformly random split)."""
    return ("epsilon_greedy", {"epsilon": 1.0}) if name == "uniform" else (name, None)


def _alternatives(scored: Scored, strategies: list[str]) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """Every strategy with the platform's defaults (validation: the models' scores)."""
    return {
        kind: (kind, {"scores": scored.validation.tolist()} if kind == "validation" else None) for kind in strategies
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _check(args)
    started = time.perf_counter()
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("quiet",)}
    steps = len(args.datasets) * args.seeds * (1 + len(args.strategies))
    results = []
    checks: dict[str, list[dict[str, Any]]] = {}
    with tqdm(total=steps, disable=args.quiet, unit="step", file=sys.stderr) as bar:
        try:
            adult = load_adult(args.adult_dir) if "census" in args.datasets else None
            real_fraud = load_creditcard(args.fraud_csv) if args.fraud_csv and "fraud" in args.datasets else None
        except DatasetError as error:
            raise SystemExit(f"replay: {error}") from None
        for dataset in args.datasets:
            scored = []
            for seed in range(args.seeds):
                bar.set_description(f"{dataset}: training models, seed {seed}")
                if dataset == "census":
                    assert adult is not None
                    stream = census_stream(adult, seed, n_chunks=args.chunks)
                else:
                    table = real_fraud or synthetic_fraud(n_rows=args.fraud_rows, seed=seed)
                    stream = fraud_stream(table, n_chunks=args.chunks)
                scored.append(train_and_score(stream, seed))
                bar.update()
            bar.set_description(f"{dataset}: replaying strategies")
            results.append(run_dataset(scored, args.strategies, args.rollback, progress=bar.update))
            if args.counterfactual:
                bar.set_description(f"{dataset}: off-policy checks")
                checks[dataset] = coverage_table(
                    [
                        check_seed(s.correct, _logger(args.counterfactual), _alternatives(s, args.strategies), seed)
                        for seed, s in enumerate(scored)
                    ]
                )
    for result in results:
        print(
            f"\n{report.title(result)} — drift: {result.drift_note}"
            f"{f' at chunk {result.drift_chunk}' if result.drift_chunk is not None else ''}; "
            f"{result.n_chunks} chunks, {args.seeds} seeds, means over seeds"
        )
        print(report.text_table(result))
        print(report.paired_text(result))
    print("\n* drift-aware variants, not in the paper.")
    for dataset, rows in checks.items():
        print(f"\n{dataset}: off-policy estimates from {args.counterfactual}'s log vs the truth, {args.seeds} seeds")
        print(report.counterfactual_table(rows))
    if args.json:
        args.json.write_text(json.dumps({**report.to_json(results, settings), "counterfactual": checks}, indent=1))
        print(f"wrote {args.json}")
    if args.html:
        report.write_html(results, args.html, settings)
        print(f"wrote {args.html}")
    print(f"finished in {time.perf_counter() - started:.1f} s")
    return 0
