"""Create an API key and print it once: ``manage.py create_api_key NAME --experiment SLUG``."""

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mabdash.accounts.services import api_key_create
from mabdash.errors import ServiceError
from mabdash.experiments.models import Experiment


class Command(BaseCommand):
    help = "Create an API key for a model server (role client) or automation (role admin); prints it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", choices=["client", "admin"], default="client")
        parser.add_argument("--experiment", action="append", default=[], metavar="SLUG", help="repeatable")
        parser.add_argument("--all-experiments", action="store_true")
        parser.add_argument(
            "--user", metavar="USERNAME", help="a personal key that acts as this user, with the user's roles"
        )
        parser.add_argument("--quiet", action="store_true", help="print only the key")

    def handle(self, *args: Any, **options: Any) -> None:
        experiments = list(Experiment.objects.filter(slug__in=options["experiment"]))
        missing = set(options["experiment"]) - {e.slug for e in experiments}
        if missing:
            raise CommandError(f"--experiment: no experiment {', '.join(sorted(missing))}")
        user = None
        if options["user"]:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"--user: no user {options['user']!r}")
        try:
            created = api_key_create(
                name=options["name"],
                role=options["role"],
                experiments=experiments,
                all_experiments=options["all_experiments"],
                user=user,
            )
        except ServiceError as error:
            raise CommandError(error.message) from None
        if options["quiet"]:
            self.stdout.write(created.raw_key)
            return
        if user is not None:
            scope = f"personal key of {user.username}"
        elif options["all_experiments"]:
            scope = "all experiments"
        else:
            scope = ", ".join(e.slug for e in experiments)
        self.stdout.write(f"API key {options['name']!r} ({options['role']}, {scope}):\n  {created.raw_key}")
        self.stdout.write("Store it now: it is not shown again. Send it as `Authorization: Api-Key <key>`.")
