"""Seed the demo: an operator account, three census-income model versions, a running
experiment and a client API key (written to var/demo-api-key for the simulator)."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction

from mabdash.accounts.services import api_key_create, user_create
from mabdash.experiments.models import Experiment, ModelVersion
from mabdash.experiments.services import experiments, registry

DEMO_USER = "operator"
DEMO_PASSWORD = "mabdash-demo"
DEMO_SLUG = "census-income"
DEMO_MODELS = [
    ("census-logreg", "1", 0.846),
    ("census-tree", "1", 0.812),
    ("census-boosting", "1", 0.868),
]


class Command(BaseCommand):
    help = "Create the demo operator, models, experiment and client key (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=DEMO_USER).first()
        if user is None:
            user_create(username=DEMO_USER, password=DEMO_PASSWORD, role="operator")
        models = []
        for name, version, score in DEMO_MODELS:
            model = ModelVersion.objects.filter(name=name, version=version).first()
            models.append(
                model
                or registry.model_version_register(
                    name=name,
                    version=version,
                    artifact_uri=f"file://models/{name}-{version}.joblib",
                    validation_score=score,
                    metadata={"dataset": "UCI Adult", "demo": True},
                    actor="seed_demo",
                )
            )
        experiment = Experiment.objects.filter(slug=DEMO_SLUG).first()
        if experiment is None:
            experiment = experiments.experiment_create(
                slug=DEMO_SLUG,
                name="Census income scoring",
                description="Demo: three models predict whether income exceeds $50K (UCI Adult).",
                policy_kind="thompson",
                model_version_ids=[m.pk for m in models],
                status="running",
                actor="seed_demo",
            )
        key_file = Path(settings.VAR_DIR) / "demo-api-key"
        if not key_file.exists():
            created = api_key_create(name="demo-simulator", experiments=[experiment])
            key_file.write_text(created.raw_key + "\n")
            key_file.chmod(0o600)
        self.stdout.write(
            f"Demo ready: experiment {DEMO_SLUG!r}; dashboard login {DEMO_USER} / {DEMO_PASSWORD}; "
            f"client API key in {key_file}"
        )
