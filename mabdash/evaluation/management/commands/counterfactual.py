"""python manage.py counterfactual SLUG [--since TIME] [--json PATH]: a counterfactual report now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from mabdash.evaluation.models import CounterfactualReport
from mabdash.evaluation.services import reports
from mabdash.experiments.models import Experiment
from mabdash.inputs import DateTime, InputError


class Command(BaseCommand):
    help = (
        "Compute what every fixed alternative and every strategy would have earned on an experiment's logged "
        "traffic (off-policy evaluation), here and now; store it like the dashboard's reports and print it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the experiment")
        parser.add_argument("--since", help="only decisions from this time on (RFC 3339, e.g. 2026-12-01T00:00:00Z)")
        parser.add_argument("--json", type=Path, help="also write the full report here")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        experiment = Experiment.objects.filter(slug=options["slug"]).first()
        if experiment is None:
            raise CommandError(f"no experiment {options['slug']!r}")
        since = None
        if options["since"]:
            try:
                since = DateTime().check(options["since"])
            except InputError as error:
                raise CommandError(f"--since: {error}") from None
        report = reports.report_request(experiment, "manage.py counterfactual", since=since)
        if report.status == CounterfactualReport.Status.RUNNING:
            raise CommandError(f"report {report.pk} is already being computed by a worker; see the API or dashboard")
        with tqdm(total=100, disable=options["quiet"], unit="%", file=self.stderr._out) as bar:

            def advance(fraction: float, stage: str) -> None:
                bar.set_description(stage[:40])
                bar.update(round(100 * fraction) - bar.n)

            report = reports.report_compute(report.pk, on_progress=advance)
        if report.status != CounterfactualReport.Status.DONE or report.result is None:
            raise CommandError(f"report {report.pk} failed: {report.error}")
        self._print(report.result)
        if options["json"]:
            options["json"].write_text(json.dumps(report.result, indent=1))
            self.stdout.write(f"written to {options['json']}")

    def _print(self, result: dict[str, Any]) -> None:
        self.stdout.write(result["sentence"])
        actual = result["actual"]
        self.stdout.write(
            f"{result['decisions']:,} decisions, {result['rewarded']:,} with a reward; earned {actual['mean']:.4f} "
            "per decision"
            if actual["mean"] is not None
            else f"{result['decisions']:,} decisions, none rewarded"
        )
        self.stdout.write(f"{'alternative':<40}{'estimate':>10}{'interval':>22}{'support':>10}  note")
        rows = [row["dr"] for row in result["fixed"]] + result["strategies"]
        for row in rows:
            if row["value"] is None:
                self.stdout.write(f"{row['target']:<40}{'—':>10}{'':>22}{'':>10}  {row['warning']}")
                continue
            interval = f"[{row['lower']:.4f}, {row['upper']:.4f}]"
            note = row["warning"] or ""
            self.stdout.write(
                f"{row['target']:<40}{row['value']:>10.4f}{interval:>22}{row['support']:>10,.0f}  "
                f"{row['method']} {note}".rstrip()
            )
