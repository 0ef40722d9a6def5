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
from mabdash.experiments.selectors import effective_allocation, override_active

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
    reward_kind: str = "binary"
    reward_window_seconds: int = 86_400
    # Wall-clock time (Unix seconds) at which an override expires: the entry is reloaded then.
    valid_until: float | None = None
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

    @property
    def pk(self) -> int:
        return self.experiment_id

    def arm_id(self, position: int) -> int | None:
        """The Arm row of a position (None if the experiment has no such arm, as far as known)."""
        return self.arms[position].arm_id if 0 <= position < len(self.arms) else None

    def sample(self, uniform: float) -> int:
        """The arm position for a uniform draw in [0, 1)."""
        return bisect_right(self.cdf, uniform)


def load_entry(slug: str) -> ServingEntry:
    """Read an experiment's serving entry from the database."""
    experiment = Experiment.objects.filter(slug=slug).first()
    if experiment is None:
        raise NotFound({"experiment": [f"no experiment {slug!r}"]})
    arms = list(Arm.objects.filter(experiment=experiment).select_related("model_version").order_by("position"))
    state = PolicyState.objects.filter(experiment=experiment).values_list("allocation", "version").first()
    allocation_list, policy_version = state if state else ([], 0)
    override = override_active(experiment.pk)
    allocation, served_by = effective_allocation(
        allocation_list, arms, override, status=experiment.status, default_position=experiment.default_position
    )
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
        reward_kind=experiment.reward_kind,
        reward_window_seconds=experiment.reward_window_seconds,
        valid_until=override.expires_at.timestamp() if override and override.expires_at else None,
    )


class ServingCache:
    """Per-process cache of serving entries, refreshed by polling ``serving_version``."""

    def __init__(self) -> None:
        self._entries: dict[str, ServingEntry] = {}
        self._slugs: dict[int, str] = {}
        self._lock = threading.Lock()

    def get(self, slug: str, at_least: int = 0) -> ServingEntry:
        """The entry to serve now; stale (last known) if the database is down.

        ``at_least`` is a ``serving_version`` the caller has already seen (a client holding a
        newer snapshot than this process): an older cached entry is checked at once instead
        of at the next refresh, so no process serves an allocation the caller knows is gone.
        """
        entry = self._entries.get(slug)
        now = time.monotonic()
        expired = entry is not None and entry.valid_until is not None and time.time() >= entry.valid_until
        fresh = entry is not None and now - entry.checked_at < settings.MABDASH["SERVING_REFRESH_SECONDS"]
        if entry is not None and fresh and not expired and entry.serving_version >= at_least:
            return entry
        try:
            version = Experiment.objects.filter(slug=slug).values_list("serving_version", flat=True).first()
            if version is None:
                self._entries.pop(slug, None)
                raise NotFound({"experiment": [f"no experiment {slug!r}"]})
            if entry is None or expired or entry.serving_version != version:
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

    def get_by_id(self, experiment_id: int) -> ServingEntry:
        """Like :meth:`get`, by experiment id (rewards carry ids in their decision ids)."""
        slug = self._slugs.get(experiment_id)
        if slug is None:
            slug = Experiment.objects.filter(pk=experiment_id).values_list("slug", flat=True).first()
            if slug is None:
                raise NotFound({"experiment": [f"no experiment with id {experiment_id}"]})
            self._slugs[experiment_id] = slug
        return self.get(slug)

    def reload(self, slug: str) -> ServingEntry:
        """Read the entry again now (something newer than the cache was referenced)."""
        with self._lock:
            self._entries.pop(slug, None)
        return self.get(slug)

    def size(self) -> int:
        """Experiments this process can serve from memory."""
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry (tests)."""
        with self._lock:
            self._entries.clear()
            self._slugs.clear()


serving_cache = ServingCache()
