from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "mabdash.control"
    label = "control"
    verbose_name = "Control: overrides, approvals, guardrails, webhooks"
