"""Apply retention now: archive and drop raw decisions and rewards past the boundary."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mabdash.experiments.management.arguments import experiments_named
from mabdash.experiments.services.checkpoints import CheckpointRefused
from mabdash.experiments.services.retention import retention_apply, retention_days


class Command(BaseCommand):
    help = (
        "Archive (gzipped CSV) and drop each experiment's decisions and rewards older than its retention "
        "(retention_days, else MABDASH_RETENTION_DAYS), after checkpointing its policy state. Beat runs "
        "this hourly; experiments without retention are left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slugs", nargs="*", metavar="SLUG", help="experiments (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        experiments = experiments_named(options["slugs"])
        refused = []
        for experiment in experiments:
            if retention_days(experiment) is None:
                self.stdout.write(f"{experiment.slug}: no retention set (keeps everything)")
                continue
            try:
                result = retention_apply(experiment.pk)
            except CheckpointRefused as error:
                self.stderr.write(f"{experiment.slug}: nothing dropped: {error}")
                refused.append(experiment.slug)
                continue
            assert result is not None
            self.stdout.write(
                f"{experiment.slug}: archived {result.decisions:,} decisions and {result.rewards:,} rewards "
                f"from before {result.boundary:%Y-%m-%d %H:%M} UTC to {result.archive} "
                f"(checkpoint at version {result.checkpoint_version})"
            )
        if refused:
            raise CommandError(f"the live state differs from the ledger for: {', '.join(refused)}")
