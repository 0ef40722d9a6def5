"""What the experiments app's management commands share: experiments named on the command line."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db.models import QuerySet

from mabdash.experiments.models import Experiment


def experiments_named(slugs: list[str]) -> QuerySet[Experiment]:
    """The experiments with these slugs (all of them when none is given), by slug; a
    ``CommandError`` naming every slug that does not exist."""
    experiments = Experiment.objects.order_by("slug")
    if not slugs:
        return experiments
    experiments = experiments.filter(slug__in=slugs)
    missing = set(slugs) - set(experiments.values_list("slug", flat=True))
    if missing:
        raise CommandError(f"no experiment {', '.join(sorted(missing))}")
    return experiments
