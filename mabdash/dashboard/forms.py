"""The dashboard's forms: registering a model version, creating an experiment, changing its
settings. They only turn form text into values; the rules are the services' (the same as the
API's), and a service's refusal is shown next to the field it names."""

from __future__ import annotations

import json
import math
from typing import Any

from django import forms

import policies
from mabdash.errors import InvalidInput
from mabdash.experiments.models import Experiment, ModelVersion
from mabdash.experiments.services.experiments import policy_defaults
from policies.guardrails import DEFAULTS as GUARDRAIL_DEFAULTS
from policies.guardrails import guardrail_config

STRATEGY_HELP = {
    "naive": "Always the default arm; no learning.",
    "validation": "The best validation score given at registration; no learning.",
    "ab_test": "A fixed split for an exploration budget, then commit to the best.",
    "epsilon_greedy": "Exploit the best mean; explore uniformly with probability ε.",
    "ucb1": "Upper confidence bound: the most optimistic arm.",
    "thompson": "Serve each arm with its posterior probability of being the best.",
    "discounted_thompson": "Thompson sampling on discounted evidence (follows drift).",
    "sw_ucb": "UCB1 over a sliding window of recent rewards (follows drift).",
}


def apply_service_errors(form: forms.Form, error: InvalidInput, fields: dict[str, str] | None = None) -> None:
    """Show a service's refusal next to the form field it names (or above the form)."""
    fields = fields or {}
    for name, messages in error.errors.items():
        prefix = name.split(".")[0]
        target = fields.get(name) or fields.get(prefix) or prefix
        for message in messages:
            form.add_error(
                target if target in form.fields else None, f"{name}: {message}" if target != name else message
            )


# --------------------------------------------------------------------------- models
class ModelVersionForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Letters, digits, . _ -; starting with a letter or digit.")
    version = forms.CharField(max_length=50)
    artifact_uri = forms.CharField(max_length=500, label="Artifact URI", help_text="Where the serving side loads it.")
    validation_score = forms.FloatField(required=False, help_text="Offline score (used by the validation strategy).")
    metadata = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="JSON object.")

    def clean_validation_score(self) -> float | None:
        score = self.cleaned_data.get("validation_score")
        if score is not None and not math.isfinite(score):
            raise forms.ValidationError("must be a finite number")
        return score

    def clean_metadata(self) -> dict[str, Any]:
        text = self.cleaned_data.get("metadata") or "{}"
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise forms.ValidationError('must be a JSON object, e.g. {"framework": "sklearn"}') from None
        if not isinstance(value, dict):
            raise forms.ValidationError("must be a JSON object")
        return value


# --------------------------------------------------------------------------- strategies and guardrails
def strategy_choices() -> list[tuple[str, str]]:
    return [(kind, f"{kind} — {STRATEGY_HELP.get(kind, '')}") for kind in policies.POLICIES]


def strategy_parameters(current: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per strategy, its parameters with defaults (and the current values), for the form."""
    current = current or {}
    return [
        {
            "kind": kind,
            "help": STRATEGY_HELP.get(kind, ""),
            "params": [
                {
                    "name": name,
                    "default": default,
                    "value": current.get("params", {}).get(name, default) if current.get("kind") == kind else default,
                    "input": f"param-{kind}-{name}",
                }
                for name, default in policy_defaults(kind).items()
            ],
        }
        for kind in policies.POLICIES
    ]


def _typed(text: str, default: Any, name: str) -> Any:
    """Form text as the type of the parameter's default."""
    if isinstance(default, bool):
        return text.lower() in ("true", "on", "1", "yes")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise InvalidInput({f"policy.params.{name}": ["must be an integer"]}) from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise InvalidInput({f"policy.params.{name}": ["must be a number"]}) from None
    if default is None:
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidInput({f"policy.params.{name}": ["must be JSON (a number, a list, or null)"]}) from None
    return text


def strategy_params_from(data: Any, kind: str) -> dict[str, Any]:
    """The chosen strategy's parameters from the form; empty fields take the default."""
    if kind not in policies.POLICIES:
        raise InvalidInput({"policy_kind": [f"must be one of {', '.join(policies.POLICIES)}"]})
    params: dict[str, Any] = {}
    for name, default in policy_defaults(kind).items():
        text = (data.get(f"param-{kind}-{name}") or "").strip()
        if text:
            value = _typed(text, default, name)
            if value != default:
                params[name] = value
    return params


def _flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in config.items():
        if isinstance(value, dict):
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def guardrail_fields(current: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every guardrail setting with its default and the value in force."""
    merged = dict(_flatten(guardrail_config(current or {})))
    return [
        {
            "name": name,
            "default": default,
            "value": merged[name],
            "input": f"guard-{name}",
            "flag": isinstance(default, bool),
        }
        for name, default in _flatten(GUARDRAIL_DEFAULTS)
    ]


def guardrails_from(data: Any) -> dict[str, Any]:
    """The guardrail settings that differ from the defaults, as a partial object."""
    partial: dict[str, Any] = {}
    for name, default in _flatten(GUARDRAIL_DEFAULTS):
        key = f"guard-{name}"
        if isinstance(default, bool):
            value: Any = data.get(key) in ("on", "true", "1")
        else:
            text = (data.get(key) or "").strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                raise InvalidInput({f"guardrails.{name}": ["must be a number"]}) from None
            if not math.isfinite(value):
                raise InvalidInput({f"guardrails.{name}": ["must be a finite number"]})
            if isinstance(default, int) and value == int(value):
                value = int(value)
        if value != default:
            group, _, leaf = name.rpartition(".")
            (partial.setdefault(group, {}) if group else partial)[leaf or name] = value
    return partial


# --------------------------------------------------------------------------- experiments
class ExperimentSettingsForm(forms.Form):
    """What can change after creation (also the creation form's common part)."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2}))
    policy_kind = forms.ChoiceField(label="Strategy", choices=strategy_choices)
    policy_seed = forms.IntegerField(label="Seed", min_value=0, max_value=2**31 - 1, initial=0)
    reward_window_seconds = forms.IntegerField(
        label="Reward window (seconds)",
        min_value=1,
        max_value=31_536_000,
        initial=86_400,
        help_text="Rewards for older decisions are stored as late and not learned from.",
    )
    retention_days = forms.IntegerField(
        label="Retention (days)",
        required=False,
        min_value=1,
        max_value=36_500,
        help_text="Older decisions and rewards are archived, then dropped; empty: the global default "
        "(MABDASH_RETENTION_DAYS; unset keeps everything).",
    )
    default_arm = forms.IntegerField(min_value=0, max_value=999, initial=0, help_text="Served while paused or stopped.")
    approval_mode = forms.ChoiceField(
        choices=[("direct", "direct: actions apply at once"), ("four_eyes", "four-eyes: a second person approves")]
    )
    rollback_mode = forms.ChoiceField(
        choices=[
            ("auto", "automatic: roll back at once"),
            ("veto_window", "veto window: roll back unless an approver vetoes in time"),
            ("approval", "approval: an approver decides"),
        ]
    )
    reason = forms.CharField(required=False, max_length=1000, help_text="Kept in the audit trail.")


class ExperimentCreateForm(ExperimentSettingsForm):
    slug = forms.RegexField(
        regex=r"^[a-z0-9][a-z0-9-]{0,62}$",
        max_length=63,
        help_text="Used in URLs and by model servers: lowercase letters, digits and hyphens.",
        error_messages={"invalid": "lowercase letters, digits and hyphens, at most 63"},
    )
    models = forms.ModelMultipleChoiceField(
        queryset=ModelVersion.objects.order_by("name", "version"),
        widget=forms.CheckboxSelectMultiple,
        help_text="Each selected model version becomes an arm, in the order listed.",
    )
    reward_kind = forms.ChoiceField(choices=Experiment.RewardKind.choices, initial="binary")
    status = forms.ChoiceField(choices=[("running", "start it now"), ("draft", "keep it a draft")], initial="running")

    field_order = ["slug", "name", "description", "models", "reward_kind", "policy_kind", "policy_seed"]
