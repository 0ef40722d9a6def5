"""Overrides are serving state: the model moves from ``control`` to ``experiments``.

The table already exists (``control`` 0001 created it), so the model is created in the
migration state only and then renamed to this app's table name. ``control`` 0002 drops
it from that app's state. Also adds ``Experiment.control_version``.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0002_reward_fk_without_single_indexes"),
        ("control", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Override",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("kind", models.CharField(choices=[("pin", "Pin"), ("weights", "Weights")], max_length=10)),
                        ("position", models.PositiveIntegerField(blank=True, help_text="Pinned arm.", null=True)),
                        (
                            "weights",
                            models.JSONField(
                                blank=True, help_text="One weight per arm position, normalised to sum to 1.", null=True
                            ),
                        ),
                        ("created_by", models.CharField(max_length=150)),
                        ("reason", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("expires_at", models.DateTimeField(blank=True, null=True)),
                        ("ended_at", models.DateTimeField(blank=True, null=True)),
                        ("end_reason", models.CharField(blank=True, max_length=20)),
                        (
                            "experiment",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="overrides",
                                to="experiments.experiment",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "control_override",
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("ended_at__isnull", True)),
                                fields=("experiment",),
                                name="one_active_override_per_experiment",
                            )
                        ],
                    },
                ),
            ],
        ),
        migrations.AlterModelTable(name="override", table=None),
        migrations.AddField(
            model_name="experiment",
            name="control_version",
            field=models.BigIntegerField(default=1),
        ),
    ]
