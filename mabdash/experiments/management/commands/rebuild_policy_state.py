"""Rebuild experiments' policy state from the ledgers and compare it with the live state."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mabdash.experiments.management.arguments import experiments_named
from mabdash.experiments.models import PolicyState
from mabdash.experiments.services import rebuild


class Command(BaseCommand):
    help = (
        "Replay each experiment's policy ledger from its latest checkpoint (or from version 0) and "
        "compare with the live state (exit status 1 on a difference); --write replaces the live state."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slugs", nargs="*", metavar="SLUG", help="experiments (default: all)")
        parser.add_argument("--write", action="store_true", help="replace the live state with the rebuild")
        parser.add_argument(
            "--from-start",
            action="store_true",
            help="replay from version 0, ignoring checkpoints (impossible once retention archived rewards)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        experiments = experiments_named(options["slugs"])
        if options["write"] and options["from_start"]:
            raise CommandError("--write rebuilds from the latest checkpoint; compare with --from-start first")
        differing = []
        for experiment in experiments:
            if options["write"]:
                changed = rebuild.policy_replace_with_rebuild(experiment.pk)
                self.stdout.write(f"{experiment.slug}: {'replaced (it differed)' if changed else 'unchanged'}")
                continue
            try:
                rebuilt = rebuild.policy_rebuild(experiment.pk, from_start=options["from_start"])
            except rebuild.RebuildImpossible as error:
                raise CommandError(f"{experiment.slug}: {error}") from error
            same = rebuilt.matches(PolicyState.objects.get(experiment=experiment))
            start = (
                "from version 0"
                if rebuilt.checkpoint_version is None
                else f"from the checkpoint at version {rebuilt.checkpoint_version}"
            )
            self.stdout.write(
                f"{experiment.slug}: {'identical' if same else 'DIFFERS'} (version {rebuilt.version}, "
                f"{rebuilt.applied_count} rewards, replayed {start})"
            )
            if not same:
                differing.append(experiment.slug)
        if differing:
            raise CommandError(f"live state differs from the ledger for: {', '.join(differing)}")
