"""List the ledgers' time partitions; create the coming periods' and drop emptied ones."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mabdash.experiments.services.partitions import SCHEMES, partitioned, partitions_list, partitions_maintain


class Command(BaseCommand):
    help = (
        "PostgreSQL: list the partitions of the decision ledger (by day) and of the allocation "
        "snapshots (by month); --maintain creates the coming periods' partitions and drops past "
        "days' empty decision partitions, as beat does hourly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--maintain", action="store_true", help="create ahead and drop emptied partitions now")

    def handle(self, *args: Any, **options: Any) -> None:
        if not any(partitioned(scheme) for scheme in SCHEMES):
            self.stdout.write("the ledgers are plain tables here (SQLite, or before migrations 0009 and 0010)")
            return
        if options["maintain"]:
            created, dropped = partitions_maintain()
            self.stdout.write(f"created {len(created)} partitions, dropped {len(dropped)} empty ones")
        for scheme in SCHEMES:
            found = partitions_list(scheme)
            if found:
                self.stdout.write(
                    f"{scheme.table}: {len(found)} {scheme.period} partitions, {found[0].start} … {found[-1].start}, "
                    "and a default partition"
                )
