"""The live platform's rollback rules, run on a replay's per-request rewards.

The replay uses the very detectors the live guardrails use (``policies.detectors``), with
their default settings, so what the study reports about rollback is what an experiment in
mabdash would do on the same traffic:

- the **change rule** — a Bernoulli GLR test per model for a drop against the model's own
  earlier rewards (``policies.change``). Its threshold needs no tuning per stream: the
  Bernoulli likelihood's variance is ``m (1 − m)`` at the model's own mean ``m``, which is
  what a request's reward in [0, 1] can vary by at most, so it calibrates itself to each
  stream's reward level (census accuracy near 0.85, fraud rewards near 0.999);
- the **shortfall rule** — the same GLR with the other active models' rewards of the same
  chunks added to each model's reference (``policies.change``'s shortfall variant), fed at
  every chunk to every active model, served or not, as the live guardrails feed every
  active arm at every learning batch;
- the **relative rule** — anytime-valid confidence sequences per model
  (``policies.confidence``), firing when a model is confidently worse than another.

They see every request a model served, in order, exactly as the live guardrails see its
rewards; a firing rule excludes the model (never the last active one) and its change and
shortfall detectors start afresh, as after a live rollback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from policies.change import SHORTFALL_WINDOW, ChangeState, change_update
from policies.confidence import MeanSequence, sequence_update
from policies.detectors import others_of, relative_bounds_fired
from policies.guardrails import DEFAULTS

RELATIVE = DEFAULTS["relative"]
CHANGE = DEFAULTS["change"]
SHORTFALL = DEFAULTS["shortfall"]


@dataclass
class Guardrails:
    """Per-model detector state for one replayed strategy."""

    n_models: int
    change: list[ChangeState] = field(init=False)
    shortfall: list[ChangeState] = field(init=False)
    sequences: list[MeanSequence] = field(init=False)

    def __post_init__(self) -> None:
        self.change = [ChangeState.empty() for _ in range(self.n_models)]
        self.shortfall = [self._fresh_shortfall() for _ in range(self.n_models)]
        self.sequences = [MeanSequence.empty() for _ in range(self.n_models)]

    @staticmethod
    def _fresh_shortfall() -> ChangeState:
        return ChangeState.empty(window=SHORTFALL_WINDOW, alternatives=True)

    def observe(self, arms: np.ndarray, rewards: np.ndarray, active: np.ndarray) -> dict[int, str]:
        """Feed one chunk's served requests (in order); return the models to roll back → rule.

        The same arithmetic as ``policies.detectors.change_rule`` and ``relative_rule``, called
        on their array cores (the replay makes millions of these checks; the rewards are in
        [0, 1] by construction).
        """
        fired: dict[int, str] = {}
        for model in np.unique(arms).tolist():
            own = rewards[arms == model][None, :]
            self.sequences[model] = sequence_update(self.sequences[model], own)
            self.change[model], result = change_update(
                self.change[model], own, threshold=CHANGE["threshold"], min_reference=CHANGE["min_reference"]
            )
            if result.alarm_at[0] > 0:
                fired[model] = "change"
        models = np.flatnonzero(active)
        own = [rewards[arms == model] for model in models]
        others_count, others_sum = others_of([r.size for r in own], [float(r.sum()) for r in own])
        for index, model in enumerate(models.tolist()):
            self.shortfall[model], result = change_update(
                self.shortfall[model],
                own[index][None, :],
                others=(others_count[index : index + 1], others_sum[index : index + 1]),
                threshold=SHORTFALL["threshold"],
                min_reference=SHORTFALL["min_reference"],
            )
            if result.alarm_at[0] > 0:
                fired.setdefault(model, "shortfall")
        joined = MeanSequence(
            *(np.concatenate([getattr(s, name) for s in self.sequences]) for name in MeanSequence.field_names())
        )
        lower, upper = joined.bounds(RELATIVE["alpha"] / (2 * self.n_models))
        relative, _, _ = relative_bounds_fired(
            lower[None, :],
            upper[None, :],
            joined.count[None, :],
            np.asarray(active, dtype=bool)[None, :],
            margin=RELATIVE["margin"],
            min_samples=RELATIVE["min_samples"],
        )
        for model in np.flatnonzero(relative[0]).tolist():
            fired.setdefault(model, "relative")
        return fired

    def rolled_back(self, model: int) -> None:
        self.change[model] = ChangeState.empty()
        self.shortfall[model] = self._fresh_shortfall()
