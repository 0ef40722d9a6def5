from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "mabdash.experiments"
    label = "experiments"
    verbose_name = "Experiments"
