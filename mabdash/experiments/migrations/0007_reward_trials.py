"""Count rewards: ``Reward.trials`` (1 for every existing reward). A constant database default,
so PostgreSQL adds the column without rewriting the table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0006_experiment_archived_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="reward",
            name="trials",
            field=models.PositiveIntegerField(db_default=1, default=1),
        ),
    ]
