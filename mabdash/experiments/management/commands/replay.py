"""``manage.py replay``: the replay study (its core is the Django-free ``replay`` package).

The study needs the demo dependencies (scikit-learn, tqdm: ``requirements-demo.txt``), which
the production image leaves out; without them the command says so instead of failing.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand

DEMO_HINT = "the replay study needs the demo dependencies: pip install -r requirements-demo.txt"


def _study() -> Any:
    try:
        from replay import cli
    except ImportError as error:
        sys.stderr.write(f"replay: {DEMO_HINT} ({error})\n")
        raise SystemExit(2) from None
    return cli


class Command(BaseCommand):
    help = "Replay the paper's study (naive, validation, A/B, ε-greedy, UCB, Thompson) on census and fraud streams."

    def run_from_argv(self, argv: list[str]) -> NoReturn:
        # The study has its own argument parser; hand it the arguments unchanged.
        raise SystemExit(_study().main(argv[2:]))

    def handle(self, *args: Any, **options: Any) -> None:  # pragma: no cover - run_from_argv never calls it
        raise SystemExit(_study().main([]))
