"""What each web process serves from: a per-process cache of every experiment's allocation.

``decide`` never waits on learning and normally never touches the database: it samples
from the cached entry. At most every ``MABDASH["SERVING_REFRESH_SECONDS"]`` (0.5 s) a
process asks the database for the experiment's ``serving_version`` (one indexed row) and
reloads the entry when it changed, so a new allocation is served within that time of its
commit. If the database is unreachable, the last known entry keeps being served.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_right
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from mabdash.errors import NotFound, Unavailable
from mabdash.experiments.models import Arm, Experiment, PolicyState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingArm:
    """An arm as decide returns it."""

    position: int
    arm_id: int
    status: str
    model: dict[str, str]


@dataclass
class ServingEntry:
    """Everything decide needs about one experiment, as of ``serving_version``."""

    experiment_id: int
    slug: str
    status: str
    serving_version: int
    policy_version: int
    default_position: int
    arms: tuple[ServingArm, ...]
    allocation: tuple[float, ...]
    served_by: str
    checked_at: float = 0.0
    cdf: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        total = 0.0
        cdf = []
        for probability in self.allocation:
            total += probability
            cdf.append(total)
        positive = [i for i, p in enumerate(self.allocation) if p > 0]
        # +inf past the last positive arm: float rounding can never pick a zero-probability arm.
        for i in range(positive[-1] if positive else 0, len(cdf)):
            cdf[i] = float("inf")
        self.cdf = cdf

    def sample(self, uniform: float) -> int:
        """The arm position for a uniform draw in [0, 1)."""
        return bisect_right(self.cdf, uniform)


def effective_allocation(policy_allocation: list[float], arms: list[Arm]) -> tuple[tuple[float, ...], str]:
    """The allocation decide serves and how it is served (``policy`` for now).

    Arms that are not active get nothing; the rest keeps the policy's proportions.
    """
    weights = [p if arm.status == Arm.Status.ACTIVE else 0.0 for p, arm in zip(policy_allocation, arms, strict=False)]
    weights += [0.0] * (len(arms) - len(weights))
    total = sum(weights)
    if total <= 0:
        # Every arm with probability was excluded: spread over the active ones.
        weights = [1.0 if arm.status == Arm.Status.ACTIVE else 0.0 for arm in arms]
        total = sum(weights) or 1.0
    return tuple(w / total for w in weights), "policy"


def load_entry(slug: str) -> ServingEntry:
    """Read an experiment's serving entry from the database."""
    experiment = Experiment.objects.filter(slug=slug).first()
    if experiment is None:
        raise NotFound({"experiment": [f"no experiment {slug!r}"]})
    arms = list(Arm.objects.filter(experiment=experiment).select_related("model_version").order_by("position"))
    state = PolicyState.objects.filter(experiment=experiment).values_list("allocation", "version").first()
    allocation_list, policy_version = state if state else ([], 0)
    allocation, served_by = effective_allocation(allocation_list, arms)
    return ServingEntry(
        experiment_id=experiment.pk,
        slug=experiment.slug,
        status=experiment.status,
        serving_version=experiment.serving_version,
        policy_version=policy_version,
        default_position=experiment.default_position,
        arms=tuple(
            ServingArm(
                position=arm.position,
                arm_id=arm.pk,
                status=arm.status,
                model={
                    "name": arm.model_version.name,
                    "version": arm.model_version.version,
                    "artifact_uri": arm.model_version.artifact_uri,
                },
            )
            for arm in arms
        ),
        allocation=allocation,
        served_by=served_by,
    )


class ServingCache:
    """Per-process cache of serving entries, refreshed by polling ``serving_version``."""

    def __init__(self) -> None:
        self._entries: dict[str, ServingEntry] = {}
        self._lock = threading.Lock()

    def get(self, slug: str) -> ServingEntry:
        """The entry to serve now; stale (last known) if the database is down."""
        entry = self._entries.get(slug)
        now = time.monotonic()
        if entry is not None and now - entry.checked_at < settings.MABDASH["SERVING_REFRESH_SECONDS"]:
            return entry
        try:
            version = Experiment.objects.filter(slug=slug).values_list("serving_version", flat=True).first()
            if version is None:
                self._entries.pop(slug, None)
                raise NotFound({"experiment": [f"no experiment {slug!r}"]})
            if entry is None or entry.serving_version != version:
                entry = load_entry(slug)
        except DatabaseError:
            close_old_connections()
            if entry is None:
                raise Unavailable("the database is unavailable and this experiment is not cached yet") from None
            logger.warning("database unavailable; serving %s from its last known allocation", slug)
        entry.checked_at = now
        with self._lock:
            self._entries[slug] = entry
        return entry

    def clear(self) -> None:
        """Forget every entry (tests)."""
        with self._lock:
            self._entries.clear()


serving_cache = ServingCache()
