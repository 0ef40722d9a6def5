"""Writes of the experiments app, one module per sub-domain.

- ``registry``: model versions; ``experiments``: experiments, status, arms;
- ``rewards``: the reward ledger; ``decisions`` and ``decision_log``: the decide hot path
  and its buffered ledger;
- ``learning``: the only writer of policy state; ``scheduling``: asking workers to learn;
- ``audit``: the append-only audit trail.
"""
