"""Rebuild experiments' policy state from the ledgers and compare it with the live state."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mabdash.experiments.models import Experiment, PolicyState
from mabdash.experiments.services import learning


class Command(BaseCommand):
    help = (
        "Replay each experiment's reward ledger and policy changes from version 0. By default only "
        "compares with the live state (exit status 1 on a difference); --write replaces the live state."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slugs", nargs="*", metavar="SLUG", help="experiments (default: all)")
        parser.add_argument("--write", action="store_true", help="replace the live state with the rebuild")

    def handle(self, *args: Any, **options: Any) -> None:
        experiments = Experiment.objects.order_by("slug")
        if options["slugs"]:
            experiments = experiments.filter(slug__in=options["slugs"])
            missing = set(options["slugs"]) - set(experiments.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"no experiment {', '.join(sorted(missing))}")
        differing = []
        for experiment in experiments:
            if options["write"]:
                changed = learning.policy_replace_with_rebuild(experiment.pk)
                self.stdout.write(f"{experiment.slug}: {'replaced (it differed)' if changed else 'unchanged'}")
                continue
            rebuilt, version = learning.policy_rebuild(experiment.pk)
            live = PolicyState.objects.get(experiment=experiment)
            same = rebuilt.get_state() == live.state and version == live.version
            self.stdout.write(
                f"{experiment.slug}: {'identical' if same else 'DIFFERS'} (version {version}, "
                f"{int(rebuilt.counts_.sum())} rewards)"
            )
            if not same:
                differing.append(experiment.slug)
        if differing:
            raise CommandError(f"live state differs from the ledger for: {', '.join(differing)}")
