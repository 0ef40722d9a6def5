"""Guardrail state holds every rule's running state per arm (was: Page–Hinkley only), and
stored guardrail settings lose the first release's ``relative.confidence`` (the relative
rule is now anytime-valid, configured by ``alpha``)."""

from django.db import migrations, models


def forwards(apps, schema_editor):
    GuardrailState = apps.get_model("control", "GuardrailState")
    for state in GuardrailState.objects.all():
        state.arms = {position: {"page_hinkley": ph} for position, ph in (state.arms or {}).items()}
        state.save(update_fields=["arms"])
    Experiment = apps.get_model("experiments", "Experiment")
    for experiment in Experiment.objects.exclude(guardrails={}):
        relative = experiment.guardrails.get("relative")
        if isinstance(relative, dict) and "confidence" in relative:
            relative.pop("confidence")
            relative.pop("min_samples", None)  # its meaning changed with the rule
            experiment.save(update_fields=["guardrails"])


def backwards(apps, schema_editor):
    GuardrailState = apps.get_model("control", "GuardrailState")
    for state in GuardrailState.objects.all():
        state.arms = {p: entry["page_hinkley"] for p, entry in state.arms.items() if "page_hinkley" in entry}
        state.save(update_fields=["arms"])


class Migration(migrations.Migration):
    dependencies = [
        ("control", "0003_request_withdrawn"),
        ("experiments", "0006_experiment_archived_at"),
    ]

    operations = [
        migrations.RenameField("guardrailstate", "page_hinkley", "arms"),
        migrations.AlterField(
            model_name="guardrailstate",
            name="arms",
            field=models.JSONField(default=dict, help_text="Arm position → each rule's running state."),
        ),
        migrations.RunPython(forwards, backwards),
    ]
