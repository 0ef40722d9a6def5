"""List the decision ledger's day partitions; create the coming days' and drop emptied ones."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mabdash.experiments.services.partitions import partitioned, partitions_list, partitions_maintain


class Command(BaseCommand):
    help = (
        "PostgreSQL: list the decision ledger's day partitions; --maintain creates the coming days' "
        "partitions and drops past days' empty ones, as beat does hourly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--maintain", action="store_true", help="create ahead and drop emptied partitions now")

    def handle(self, *args: Any, **options: Any) -> None:
        if not partitioned():
            self.stdout.write("the decision ledger is one table here (SQLite, or before migration 0009)")
            return
        if options["maintain"]:
            created, dropped = partitions_maintain()
            self.stdout.write(f"created {len(created)} partitions, dropped {len(dropped)} empty ones")
        days = partitions_list()
        if days:
            self.stdout.write(f"{len(days)} day partitions, {days[0].day} … {days[-1].day}, and a default partition")
