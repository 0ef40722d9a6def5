"""``Override`` now belongs to ``experiments`` (its 0003 took over the table)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("control", "0001_initial"),
        ("experiments", "0003_override_moved_here"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="Override")]),
    ]
