"""``manage.py replay``: the replay study (its core is the Django-free ``replay`` package)."""

from typing import Any

from django.core.management.base import BaseCommand

from replay.cli import main, parser


class Command(BaseCommand):
    help = parser().description

    def run_from_argv(self, argv):
        # The study has its own argument parser; hand it the arguments unchanged.
        raise SystemExit(main(argv[2:]))

    def handle(self, *args: Any, **options: Any) -> None:  # pragma: no cover - run_from_argv never calls it
        raise SystemExit(main([]))
