"""The guardrails' running state per arm, as stored in ``GuardrailState.arms``.

``{"period": [positions], "<position>": {"sequence": …, "change": …, "shortfall": …, "page_hinkley": …}}``

- ``sequence``: the arm's confidence sequence (``policies.confidence``) for the relative
  rule. The rule compares arms *over the same period*: when an arm joins the active set
  (added, or restored after a rollback) every arm's sequence starts again, and ``period``
  records the active arms the current period began with.
- ``change``: the change detector (``policies.change``), reset when the arm is rolled back.
- ``shortfall``: the change detector whose reference also holds the other active arms'
  rewards over the same period, reset with it.
- ``page_hinkley``: the first release's detector, only when enabled.

Each detector's state is loaded with its own validation, so a corrupted row fails loudly
with the field named rather than silently mis-detecting.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from policies.change import SHORTFALL_WINDOW, ChangeState
from policies.confidence import MeanSequence, sequence_update
from policies.detectors import Detection, change_rule, shortfall_rule
from policies.legacy_detectors import PageHinkleyState, page_hinkley


class ArmMonitors:
    """Load, feed and save the per-arm detector states of one experiment."""

    def __init__(self, stored: dict[str, Any], active: np.ndarray) -> None:
        self.arms: dict[str, dict[str, Any]] = {k: dict(v) for k, v in stored.items() if k != "period"}
        current = [int(p) for p in np.flatnonzero(active)]
        period = stored.get("period")
        joined = set(current) - set(period) if isinstance(period, list) else set()
        if not isinstance(period, list) or joined:
            # A new comparison period for every arm (an arm was added or restored).
            for entry in self.arms.values():
                entry.pop("sequence", None)
            for position in joined:  # a returning arm starts afresh
                self.arms.pop(str(position), None)
        self.period = current  # an arm leaving keeps the period of the others

    def _entry(self, position: int) -> dict[str, Any]:
        return self.arms.setdefault(str(position), {})

    def sequence_feed(self, position: int, rewards: list[float]) -> None:
        entry = self._entry(position)
        sequence = MeanSequence.from_dict(entry.get("sequence"))
        entry["sequence"] = sequence_update(sequence, np.asarray([rewards], dtype=float)).as_dict()

    def sequences(self, n_arms: int) -> MeanSequence:
        """Every arm's sequence as one K-stream ``MeanSequence`` (fresh for arms without one)."""
        loaded = [MeanSequence.from_dict(self.arms.get(str(p), {}).get("sequence")) for p in range(n_arms)]
        return MeanSequence(
            *(np.concatenate([getattr(s, name) for s in loaded]) for name in MeanSequence.field_names())
        )

    def change_feed(self, position: int, rewards: list[float], *, threshold: float, min_reference: int) -> Detection:
        entry = self._entry(position)
        state, detection = change_rule(
            ChangeState.from_dict(entry.get("change")),
            rewards,
            arm=position,
            threshold=threshold,
            min_reference=min_reference,
        )
        entry["change"] = state.as_dict()
        return detection

    def shortfall_feed(
        self, position: int, rewards: list[float], others: tuple[int, float], *, threshold: float, min_reference: int
    ) -> Detection:
        """Feed the arm's new rewards and the other active arms' of the same batch (count, sum)."""
        entry = self._entry(position)
        state, detection = shortfall_rule(
            ChangeState.from_dict(entry.get("shortfall"), window=SHORTFALL_WINDOW, alternatives=True),
            rewards,
            others,
            arm=position,
            threshold=threshold,
            min_reference=min_reference,
        )
        entry["shortfall"] = state.as_dict()
        return detection

    def page_hinkley_feed(
        self, position: int, rewards: list[float], *, delta: float, threshold: float, min_samples: int
    ) -> Detection:
        entry = self._entry(position)
        state, detection = page_hinkley(
            rewards,
            PageHinkleyState.from_dict(entry.get("page_hinkley")),
            arm=position,
            delta=delta,
            threshold=threshold,
            min_samples=min_samples,
        )
        entry["page_hinkley"] = state.as_dict()
        return detection

    def as_dict(self) -> dict[str, Any]:
        return {"period": self.period, **self.arms}
