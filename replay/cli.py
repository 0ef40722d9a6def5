"""``python -m replay`` / ``python manage.py replay``: run the study, print the tables."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from replay import cache, report
from replay.counterfactual import check_seed, coverage_table
from replay.datasets import DatasetError, load_adult, load_creditcard
from replay.runner import BREAK_SHARE, SCENARIOS, Settings, run_study, scored_stream
from replay.streams import Scored
from replay.study import ROLLBACK_MODES, ROUTINGS, STRATEGIES


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="replay",
        description="Replay the deployment strategies on census and fraud streams: population drift and a "
        "model that breaks, chunk- and request-level routing, paired over seeds.",
    )
    parse.add_argument("--datasets", nargs="+", choices=["census", "fraud"], default=["census", "fraud"])
    parse.add_argument(
        "--scenarios",
        nargs="+",
        choices=SCENARIOS,
        default=list(SCENARIOS),
        help="drift: the datasets' population drift; break: a stationary stream on which the best model breaks",
    )
    parse.add_argument("--routings", nargs="+", choices=ROUTINGS, default=list(ROUTINGS))
    parse.add_argument("--seeds", type=int, default=30, help="paired seeds 0..N-1 (default 30)")
    parse.add_argument("--chunks", type=int, default=100, help="chunks per stream (default 100)")
    parse.add_argument(
        "--break-at",
        type=int,
        help=f"chunk at which the break scenario's model breaks (default {BREAK_SHARE:.0%}% of the chunks)",
    )
    parse.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parse.add_argument(
        "--rollback",
        nargs="+",
        choices=ROLLBACK_MODES,
        default=["all", "none"],
        help="which strategies the live guardrails act for: all, traditional (naive, validation, A/B) or none; "
        "the tables use the first, a comparison shows the others (default: all none)",
    )
    parse.add_argument(
        "--cache",
        type=Path,
        default=cache.default_directory(),
        help="directory of trained and scored streams, reused across runs (default: %(default)s)",
    )
    parse.add_argument("--no-cache", action="store_true", help="train every model afresh and cache nothing")
    parse.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPU count)")
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
    if args.break_at is not None and not 1 <= args.break_at < args.chunks:
        raise SystemExit(f"replay: --break-at must be between 1 and {args.chunks - 1}")
    if args.jobs < 1:
        raise SystemExit("replay: --jobs must be at least 1")


def _logger(name: str) -> tuple[str, dict[str, Any] | None]:
    """The logging strategy: ``uniform`` is ε-greedy with ε = 1 (a uniformly random split)."""
    return ("epsilon_greedy", {"epsilon": 1.0}) if name == "uniform" else (name, None)


def _alternatives(scored: Scored, strategies: list[str]) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """Every strategy with the platform's defaults (validation: the models' scores)."""
    return {
        kind: (kind, {"scores": scored.validation.tolist()} if kind == "validation" else None) for kind in strategies
    }


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        strategies=tuple(args.strategies),
        routings=tuple(args.routings),
        rollbacks=tuple(dict.fromkeys(args.rollback)),
        chunks=args.chunks,
        break_at=args.break_at,
        fraud_rows=args.fraud_rows,
        adult_dir=args.adult_dir,
        fraud_csv=args.fraud_csv,
        cache=None if args.no_cache else args.cache,
    )


def _load_check(args: argparse.Namespace) -> None:
    """Fail early, with the file named, on a dataset that cannot be read."""
    try:
        if "census" in args.datasets:
            load_adult(args.adult_dir)
        if args.fraud_csv and "fraud" in args.datasets:
            load_creditcard(args.fraud_csv)
    except DatasetError as error:
        raise SystemExit(f"replay: {error}") from None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _check(args)
    _load_check(args)
    started = time.perf_counter()
    # How the run was made (workers, cache) does not change its results, so it is not recorded.
    unrecorded = ("quiet", "jobs", "cache", "no_cache")
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in unrecorded}
    study = _settings(args)
    tasks = len(args.datasets) * len(args.scenarios) * args.seeds
    with tqdm(total=tasks, disable=args.quiet, unit="seed", file=sys.stderr, desc="training and replaying") as bar:

        def progress(done: str) -> None:
            bar.set_postfix_str(done)
            bar.update()

        results = run_study(args.datasets, args.scenarios, args.seeds, study, jobs=args.jobs, progress=progress)
    output = report.to_json(results, settings)
    primary = study.rollbacks[0]
    for summary in output["results"]:
        if summary["rollback"] != primary:
            continue
        print(f"\n{report.heading(summary)}\nstream: {summary['drift_note']}; {report.notes(summary)}")
        print(report.text_table(report.markdown_table(summary)))
        if summary["seeds"] < 2:
            print("(one seed: no paired intervals; run with --seeds 2 or more)")
        print("regret per chunk against the best fixed model of the first h chunks:")
        print(report.text_table(report.horizon_table(summary)))
    for group in report.standard_comparisons(output["results"], study.routings, study.rollbacks):
        print(f"\n{report.comparison_heading(group)}:")
        print(report.text_table(report.comparison_table(group)))
    print("\n* drift-aware variants, not in the paper. Regret columns: against the best fixed model in hindsight, ")
    print("  the best model of each segment (before/after the change) and the best model of each chunk.")
    if args.counterfactual:
        output["counterfactual"] = _counterfactual(args, study)
    if args.json:
        args.json.write_text(json.dumps(output, separators=(",", ":")))
        print(f"wrote {args.json}")
    if args.html:
        report.write_html([r for r in results if r.rollback == primary], args.html, settings)
        print(f"wrote {args.html}")
    print(f"finished in {time.perf_counter() - started:.1f} s")
    return 0


def _counterfactual(args: argparse.Namespace, study: Settings) -> dict[str, list[dict[str, Any]]]:
    """Off-policy estimates from ``--counterfactual``'s log vs the truth, on the drift streams."""
    checks = {}
    for dataset in args.datasets:
        scored = [scored_stream(dataset, "drift", seed, study) for seed in range(args.seeds)]
        checks[dataset] = coverage_table(
            [
                check_seed(s.correct, _logger(args.counterfactual), _alternatives(s, args.strategies), seed)
                for seed, s in enumerate(scored)
            ]
        )
        print(f"\n{dataset}: off-policy estimates from {args.counterfactual}'s log vs the truth, {args.seeds} seeds")
        print(report.counterfactual_table(checks[dataset]))
    return checks
