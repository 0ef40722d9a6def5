"""Writes of the control app, one module per sub-domain.

- ``actions``: the one path for every change a person makes (submit → apply), overrides;
- ``approvals``: requests for a second person, veto windows, expiry;
- ``guardrails``: automatic rollback after learning; ``learning_cycle``: learning and
  guardrails sequenced in one transaction (what the worker runs);
- ``webhooks``: subscriptions and signed deliveries.
"""
